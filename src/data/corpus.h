// corpus.h — a raw-byte training corpus: a set of files, memory-mapped, split into train and validation.
// The byte stream of a split is the concatenation of each file's part of it, in path order. Sampling is a
// pure function of (seed, step, row), so a resumed run draws exactly the batches the original run would have.
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "io/mapped_file.h"

namespace bytelm {

enum class Split { Train, Val, All };

class Corpus {
 public:
  // paths: files or directories. Directories are recursed (regular files only, entries whose name starts with
  // '.' skipped), and their files taken in byte-wise path order; the given paths keep their given order.
  // Every file is mmap'd read-only; empty files are skipped, but a corpus of 0 bytes is an Error, as is a
  // missing or unreadable path. The last ceil(val_fraction * size) bytes of each file are validation, the rest
  // training, so both splits see every file's style. val_fraction must be in [0, 1).
  Corpus(const std::vector<std::string>& paths, double val_fraction);
  ~Corpus();
  Corpus(const Corpus&) = delete;
  Corpus& operator=(const Corpus&) = delete;

  int64_t size(Split split) const;  // bytes in the split (All = everything)
  int64_t num_files() const;        // non-empty files mapped

  // Copies bytes [start, start + len) of the split's stream into out; Error if the range is out of bounds.
  void read(Split split, int64_t start, int64_t len, uint8_t* out) const;

  // Fills out[batch * len] with `batch` windows of `len` bytes at uniformly random offsets in the split's
  // stream (windows may cross file boundaries). Row r depends only on (seed, step, r): no hidden state.
  // Error if the split has fewer than len bytes. first_row > 0 gives rows [first_row, first_row + batch) of
  // the same draw: a data-parallel rank's share of the global batch.
  void sample(Split split, uint64_t seed, uint64_t step, int64_t batch, int64_t len, uint8_t* out,
              int64_t first_row = 0) const;

  struct FileView {
    std::string path;
    const uint8_t* data;
    int64_t size;
  };
  // Each file's part of the split, for evaluating whole files; parts of size 0 are omitted.
  std::vector<FileView> files(Split split) const;

 private:
  struct File {
    std::string path;
    MappedFile map;
    int64_t train_size;  // bytes [0, train_size) are training, the rest validation
  };
  // One split's stream: the parts in order and where each starts in the stream.
  struct Stream {
    std::vector<FileView> parts;
    std::vector<int64_t> starts;  // starts[i] = sum of parts[0..i) sizes
    int64_t size = 0;
  };
  const Stream& stream(Split split) const;

  std::vector<File> files_;
  Stream train_, val_, all_;
};

}  // namespace bytelm
