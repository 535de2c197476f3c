// hash.cpp — the exact BLT hash n-gram buckets (see hash.h).
// The reference computes in torch int64, whose overflow wraps; signed overflow is undefined in C++, so the
// sums and products run in uint64_t (same bits mod 2^64) and only the final value is read back as int64.
#include "blt/hash.h"

#include <string>

#include "util/error.h"

namespace bytelm::blt {
namespace {

void check_args(int n, int function, int64_t vocab) {
  if (n < 1) throw Error("hash n-gram size must be >= 1, got " + std::to_string(n));
  if (function < 0) throw Error("hash function index must be >= 0, got " + std::to_string(function));
  if (vocab < 1) throw Error("hash vocabulary must be >= 1, got " + std::to_string(vocab));
}

uint64_t prime_of(int function) { return uint64_t(kHashPrimes[function % kNumHashPrimes]); }

// Two's-complement reading of the wrapped sum, then a floored remainder so the bucket is in [0, vocab).
int64_t to_bucket(uint64_t hash, int64_t vocab) {
  int64_t signed_hash = int64_t(hash);  // modular conversion (defined since C++20, universal in practice)
  int64_t r = signed_hash % vocab;
  return r < 0 ? r + vocab : r;
}

}  // namespace

int64_t ngram_bucket(const int64_t* ids, int64_t t, int n, int function, int64_t vocab) {
  check_args(n, function, vocab);
  if (t < 0) throw Error("hash position must be >= 0, got " + std::to_string(t));
  const uint64_t prime = prime_of(function);
  uint64_t hash = 0, power = 1;  // power = prime^i for window slot i (slot 0 is the oldest id)
  for (int i = 0; i < n; ++i) {
    int64_t pos = t - (n - 1) + i;
    uint64_t id = pos >= 0 ? uint64_t(ids[pos]) : 0;  // left padding with id 0
    hash += id * power;
    power *= prime;
  }
  return to_bucket(hash, vocab);
}

void hash_buckets(const int64_t* ids, int64_t len, int n, int function, int64_t vocab, int64_t* out) {
  check_args(n, function, vocab);
  if (len < 0) throw Error("hash sequence length must be >= 0, got " + std::to_string(len));
  for (int64_t t = 0; t < len; ++t) out[t] = ngram_bucket(ids, t, n, function, vocab);
}

int64_t table_index(int function, int size_index, int n_sizes) {
  if (function < 0 || n_sizes < 1 || size_index < 0 || size_index >= n_sizes)
    throw Error("hash table index out of range: function " + std::to_string(function) + ", size index " +
                std::to_string(size_index) + " of " + std::to_string(n_sizes));
  return int64_t(function) * n_sizes + size_index;
}

}  // namespace bytelm::blt
