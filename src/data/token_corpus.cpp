// token_corpus.cpp — token ids of a corpus's splits and stateless token windows (see token_corpus.h).
#include "data/token_corpus.h"

#include <cmath>

#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace bytelm {

namespace {

// splitmix64's finaliser (as data/corpus.cpp): chained, it keys every (seed, step, row) apart.
uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

TokenCorpus::TokenCorpus(const Corpus& corpus, const Tokenizer& tokenizer, const std::vector<Split>& splits)
    : tokenizer_(tokenizer) {
  for (Split split : splits) {
    Part& p = split == Split::Train ? train_ : split == Split::Val ? val_ : all_;
    p.present = true;
    for (const auto& f : corpus.files(split)) {
      auto ids = tokenizer.encode(f.data, f.size);
      FileTokens ft{f.path, f.size, int64_t(p.ids.size()), int64_t(p.ids.size() + ids.size())};
      p.ids.insert(p.ids.end(), ids.begin(), ids.end());
      p.files.push_back(ft);
      p.bytes += f.size;
    }
  }
}

const TokenCorpus::Part& TokenCorpus::part(Split split) const {
  const Part& p = split == Split::Train ? train_ : split == Split::Val ? val_ : all_;
  if (!p.present) throw Error("token corpus: split not encoded");
  return p;
}

double TokenCorpus::bytes_per_token(Split split) const {
  const Part& p = part(split);
  return p.ids.empty() ? NAN : double(p.bytes) / double(p.ids.size());
}

void TokenCorpus::sample(Split split, uint64_t seed, uint64_t step, int64_t batch, int64_t len, int64_t* out,
                         int64_t first_row) const {
  const auto& ids = part(split).ids;
  if (int64_t(ids.size()) < len)
    throw Error("corpus split has " + std::to_string(ids.size()) + " tokens, shorter than one window of " +
                std::to_string(len) + " tokens");
  const uint64_t positions = uint64_t(int64_t(ids.size()) - len) + 1;
  const uint64_t step_key = mix(mix(seed) ^ step);
  for (int64_t row = 0; row < batch; ++row) {
    // Modulo bias is below positions / 2^64: negligible for any corpus.
    const uint64_t start = mix(step_key ^ uint64_t(first_row + row)) % positions;
    for (int64_t i = 0; i < len; ++i) out[row * len + i] = ids[size_t(start) + size_t(i)];
  }
}

int64_t TokenCorpus::decoded_bytes_of(const std::vector<int32_t>& ids) const {
  return int64_t(tokenizer_.decode(ids).size());
}

}  // namespace bytelm
