// token_corpus.h — a Corpus seen through a subword tokenizer (the BPE baseline): each file's part of a
// split encoded once into token ids, in memory. Windows are sampled in tokens the way Corpus::sample samples
// bytes (uniform offsets in the split's token stream, a pure function of (seed, step, row)). Torch-free.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/corpus.h"

namespace bytelm {

class Tokenizer;

class TokenCorpus {
 public:
  // Encodes the given splits of `corpus`, each file's part on its own (Split::All: the files whole).
  // `tokenizer` must outlive this object.
  TokenCorpus(const Corpus& corpus, const Tokenizer& tokenizer, const std::vector<Split>& splits);

  struct FileTokens {
    std::string path;
    int64_t bytes = 0;  // the raw bytes of the file's part
    int64_t begin = 0;  // its tokens are ids(split)[begin, end)
    int64_t end = 0;
  };
  const std::vector<int32_t>& ids(Split split) const { return part(split).ids; }
  const std::vector<FileTokens>& files(Split split) const { return part(split).files; }
  int64_t tokens(Split split) const { return int64_t(part(split).ids.size()); }
  int64_t bytes(Split split) const { return part(split).bytes; }
  double bytes_per_token(Split split) const;  // NaN for an empty split

  // out[batch * len]: windows of `len` tokens at uniformly random offsets in the split's token stream (they
  // may cross file boundaries). Row r depends only on (seed, step, r). Error if the split is shorter.
  void sample(Split split, uint64_t seed, uint64_t step, int64_t batch, int64_t len, int64_t* out,
              int64_t first_row = 0) const;  // rows [first_row, first_row + batch), as Corpus::sample
  // How many raw bytes these tokens stand for.
  int64_t decoded_bytes_of(const std::vector<int32_t>& ids) const;

 private:
  struct Part {
    std::vector<int32_t> ids;
    std::vector<FileTokens> files;
    int64_t bytes = 0;
    bool present = false;
  };
  const Part& part(Split split) const;
  const Tokenizer& tokenizer_;
  Part train_, val_, all_;
};

}  // namespace bytelm
