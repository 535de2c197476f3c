// hash.h — BLT token ids and the hash n-gram buckets of the local encoder's input embedding.
// Ids: 0..3 are special (BOE, BOS, EOS, BPE delimiter), byte b is b + 4, so V_byte = 260.
// Each position t adds, per hash function f and group size n, the embedding row of the bucket of the n-gram
// ending at t. The hash is fixed by released checkpoints (HF transformers `byte_group_hash_function`,
// facebookresearch/blt `bytelatent/model/blt.py`): any change here silently breaks loaded weights.
#pragma once
#include <cstdint>

namespace bytelm::blt {

constexpr int64_t kBoe = 0;  // beginning of (padding) entity; also the data loader's pad
constexpr int64_t kBos = 1;
constexpr int64_t kEos = 2;
constexpr int64_t kBpe = 3;         // BPE delimiter (only used by BPE patching, not here)
constexpr int64_t kByteOffset = 4;  // byte b has id b + kByteOffset
constexpr int64_t kVocab = 260;

constexpr int64_t byte_to_id(uint8_t b) { return int64_t(b) + kByteOffset; }
// The byte of an id, or -1 for the special ids (and anything out of range): decoding drops those.
constexpr int id_to_byte(int64_t id) { return id >= kByteOffset && id < kVocab ? int(id - kByteOffset) : -1; }

// The bases of the polynomial hashes; hash function f uses kHashPrimes[f % kNumHashPrimes] (HF cycles through
// them; the official code indexes without wrapping, which agrees for f < 11).
constexpr int kNumHashPrimes = 11;
constexpr int64_t kHashPrimes[kNumHashPrimes] = {1000000007, 5915587277, 1500450271, 3267000013, 5754853343, 4093082899,
                                                 9576890767, 3628273133, 2860486313, 5463458053, 3367900313};

// The released models' hash settings (HF BltConfig defaults).
constexpr int64_t kHashVocab = 500002;
constexpr int kHashGroupSizes[] = {3, 4, 5, 6, 7, 8};

// Bucket in [0, vocab) of the n-gram ids[t-n+1 .. t]; positions before 0 count as id 0 (left padding).
// hash = sum_i window[i] * prime^i with the OLDEST id at i = 0, in int64 with two's-complement wraparound,
// then the remainder taken non-negative (torch's `%` is a floored modulo). ids must hold t + 1 values.
// Error if t < 0, n < 1, function < 0 or vocab < 1.
int64_t ngram_bucket(const int64_t* ids, int64_t t, int n, int function, int64_t vocab);

// out[t] = ngram_bucket(ids, t, n, function, vocab) for t in [0, len).
void hash_buckets(const int64_t* ids, int64_t len, int n, int function, int64_t vocab, int64_t* out);

// HF fuses all tables into one `model.encoder_hash_tok_embedding.weight` of n_functions * n_sizes * vocab
// rows, functions outer and group sizes inner (in config order): table index = function * n_sizes +
// size_index, and bucket b of that table is row table_index * vocab + b.
int64_t table_index(int function, int size_index, int n_sizes);
inline int64_t fused_row(int64_t bucket, int64_t table, int64_t vocab) { return bucket + table * vocab; }

}  // namespace bytelm::blt
