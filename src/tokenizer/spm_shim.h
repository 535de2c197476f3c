// spm_shim.h — the C interface of bytelm_spm.so, a small module that links SentencePiece and that bytelm
// loads with dlopen(RTLD_LOCAL | RTLD_DEEPBIND). Why: Debian's libsentencepiece carries its own copy of
// protobuf-lite with exported symbols, and LibTorch loads the system libprotobuf; linked into one process
// the two copies interpose on each other and the process crashes before main. Loaded locally with deep
// binding, SentencePiece uses only its own copy and LibTorch only the system one. Only tokenizer.cpp
// includes this.
#pragma once
#include <cstddef>

extern "C" {

// Piece kinds of bytelm_spm_piece.
enum { kSpmNormal = 0, kSpmByte = 1, kSpmControl = 2, kSpmUnknown = 3, kSpmUnused = 4 };

// A processor from a serialized model; null and a message in err on failure.
typedef void* (*spm_load_fn)(const char* proto, size_t n, char* err, size_t errlen);
typedef void (*spm_free_fn)(void* h);
typedef int (*spm_size_fn)(void* h);
// The piece of `id` (pointer valid while h lives) -> its kind.
typedef int (*spm_piece_fn)(void* h, int id, const char** piece, size_t* len);
// Encodes text; *ids points into h's buffer until the next call. Returns the count, or -1 (message in err).
typedef long (*spm_encode_fn)(void* h, const char* text, size_t n, const int** ids, char* err, size_t errlen);
// Trains from lines with flags key=value; *proto is malloc'd (free with spm_release). 0 on success.
typedef int (*spm_train_fn)(const char* const* keys, const char* const* values, int nargs, const char* const* lines,
                            const size_t* lens, size_t nlines, char** proto, size_t* proto_len, char* err,
                            size_t errlen);
typedef void (*spm_release_fn)(char* p);
}
