// test_hash.cpp — BLT hash n-gram buckets against golden values (blt.md's vectors, and values computed with
// Python big integers reduced to signed 64 bits), padding, wraparound, non-negative buckets, the fused table.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "blt/hash.h"
#include "util/error.h"

namespace bytelm::blt {
namespace {

std::vector<int64_t> buckets(const std::vector<int64_t>& ids, int n, int function, int64_t vocab) {
  std::vector<int64_t> out(ids.size(), -1);
  hash_buckets(ids.data(), int64_t(ids.size()), n, function, vocab, out.data());
  return out;
}

const std::vector<int64_t> kIds = {1, 42, 21, 12, 43, 23, 1, 4};  // the ids of HF's logits test

TEST(BltHash, Ids) {
  EXPECT_EQ(kVocab, 260);
  EXPECT_EQ(byte_to_id(0), 4);
  EXPECT_EQ(byte_to_id(255), 259);
  EXPECT_EQ(id_to_byte(byte_to_id('a')), 'a');
  for (int64_t id : {kBoe, kBos, kEos, kBpe, int64_t(260), int64_t(-1)}) EXPECT_EQ(id_to_byte(id), -1);
}

TEST(BltHash, ReferenceVectorsTrigram) {
  EXPECT_EQ(buckets(kIds, 3, 0, kHashVocab),
            (std::vector<int64_t>{443987, 336383, 252484, 340511, 236466, 136472, 352191, 271972}));
}

TEST(BltHash, ReferenceVectorsEightGram) {
  EXPECT_EQ(buckets(kIds, 8, 0, kHashVocab),
            (std::vector<int64_t>{172383, 300625, 70256, 210984, 304275, 479416, 150071, 100667}));
}

TEST(BltHash, OtherFunctionsAndText) {
  // "Hello, world" after BOS, n = 4 with function 1 (prime 5915587277).
  std::vector<int64_t> ids = {kBos};
  for (char c : std::string("Hello, world")) ids.push_back(byte_to_id(uint8_t(c)));
  EXPECT_EQ(buckets(ids, 3, 0, kHashVocab),
            (std::vector<int64_t>{443987, 124875, 393970, 386145, 358223, 190185, 141703, 484917, 141967, 146186, 10172,
                                  334275, 306354}));
  EXPECT_EQ(buckets(ids, 4, 1, kHashVocab), (std::vector<int64_t>{119331, 35167, 471854, 498236, 61869, 365194, 487643,
                                                                  1301, 1492, 429280, 57976, 468262, 30753}));
}

TEST(BltHash, WraparoundOnLongWindows) {
  // Windows of 8 and 12 ids near 259 overflow int64 many times; several signed hashes are negative (e.g.
  // f = 0, n = 8 gives -1438204548266014588), so a truncating remainder would give negative buckets.
  const std::vector<int64_t> ids = {259, 258, 257, 256, 255, 254, 253, 252, 251, 250, 249, 248};
  struct Case {
    int function, n;
    int64_t bucket_500002, bucket_1000;
  };
  for (const Case& c : {Case{0, 8, 167296, 412}, Case{0, 12, 242618, 830}, Case{6, 8, 228764, 580},
                        Case{6, 12, 103894, 30}, Case{10, 8, 12274, 756}, Case{10, 12, 249272, 626}}) {
    EXPECT_EQ(ngram_bucket(ids.data(), 11, c.n, c.function, kHashVocab), c.bucket_500002) << c.function << " " << c.n;
    EXPECT_EQ(ngram_bucket(ids.data(), 11, c.n, c.function, 1000), c.bucket_1000) << c.function << " " << c.n;
  }
}

TEST(BltHash, LargeAndNegativeIds) {
  // Not BLT ids, but the arithmetic must still be exact mod 2^64 (4 of these 5 hashes are negative).
  const std::vector<int64_t> ids = {(int64_t(1) << 40) + 3, (int64_t(1) << 50) + 7, -5, (int64_t(1) << 62) + 1,
                                    123456789012345};
  EXPECT_EQ(buckets(ids, 5, 3, kHashVocab), (std::vector<int64_t>{429659, 85778, 258009, 229000, 223145}));
}

TEST(BltHash, LeftPaddingWithZeros) {
  // The n-gram at t < n - 1 is the one of the sequence with n - 1 zeros in front.
  for (int n : {2, 3, 8}) {
    std::vector<int64_t> padded(n - 1, 0);
    padded.insert(padded.end(), kIds.begin(), kIds.end());
    for (int64_t t = 0; t < int64_t(kIds.size()); ++t)
      EXPECT_EQ(ngram_bucket(kIds.data(), t, n, 0, kHashVocab),
                ngram_bucket(padded.data(), t + n - 1, n, 0, kHashVocab));
  }
  // At t = 0 only the newest slot is non-zero: hash = id * prime^(n-1); BOS * 1000000007^2 fits in int64.
  const int64_t p = kHashPrimes[0];
  std::vector<int64_t> one = {kBos};
  EXPECT_EQ(ngram_bucket(one.data(), 0, 3, 0, kHashVocab), (p * p) % kHashVocab);
  // n = 1: the id itself, prime^0.
  EXPECT_EQ(buckets(kIds, 1, 0, 10), (std::vector<int64_t>{1, 2, 1, 2, 3, 3, 1, 4}));
}

TEST(BltHash, OldestIdGetsPrimeToTheZero) {
  const int64_t p = kHashPrimes[0];
  std::vector<int64_t> ids = {5, 7};
  EXPECT_EQ(ngram_bucket(ids.data(), 1, 2, 0, kHashVocab), (5 + 7 * p) % kHashVocab);
}

TEST(BltHash, BucketsAreInRange) {
  std::vector<int64_t> ids;
  for (int i = 0; i < 2000; ++i) ids.push_back((i * 7919 + 13) % kVocab);
  for (int function = 0; function < kNumHashPrimes; ++function)
    for (int n : {3, 4, 5, 6, 7, 8})
      for (int64_t vocab : {int64_t(1), int64_t(97), kHashVocab})
        for (int64_t b : buckets(ids, n, function, vocab)) ASSERT_TRUE(b >= 0 && b < vocab);
}

TEST(BltHash, FunctionIndexCyclesThroughPrimes) {
  EXPECT_EQ(buckets(kIds, 5, kNumHashPrimes, kHashVocab), buckets(kIds, 5, 0, kHashVocab));
  EXPECT_EQ(buckets(kIds, 5, kNumHashPrimes + 2, kHashVocab), buckets(kIds, 5, 2, kHashVocab));
}

TEST(BltHash, FusedTableLayout) {
  // Functions outer, sizes inner: with sizes {3..8} and 2 functions, (f=1, n=5) is table 1*6 + 2 = 8.
  const int n_sizes = 6;
  EXPECT_EQ(table_index(0, 0, n_sizes), 0);
  EXPECT_EQ(table_index(0, 5, n_sizes), 5);
  EXPECT_EQ(table_index(1, 2, n_sizes), 8);
  EXPECT_EQ(fused_row(443987, table_index(0, 0, n_sizes), kHashVocab), 443987);
  EXPECT_EQ(fused_row(172383, table_index(0, 5, n_sizes), kHashVocab), 172383 + 5 * kHashVocab);
  // The released table has 6 * 500002 rows; its last row is bucket V - 1 of table 5.
  EXPECT_EQ(fused_row(kHashVocab - 1, table_index(0, 5, n_sizes), kHashVocab), 6 * kHashVocab - 1);
}

TEST(BltHash, Errors) {
  int64_t out[8];
  EXPECT_THROW(ngram_bucket(kIds.data(), 0, 0, 0, kHashVocab), Error);
  EXPECT_THROW(ngram_bucket(kIds.data(), 0, 3, -1, kHashVocab), Error);
  EXPECT_THROW(ngram_bucket(kIds.data(), 0, 3, 0, 0), Error);
  EXPECT_THROW(ngram_bucket(kIds.data(), -1, 3, 0, kHashVocab), Error);
  EXPECT_THROW(hash_buckets(kIds.data(), -1, 3, 0, kHashVocab, out), Error);
  EXPECT_THROW(table_index(0, 6, 6), Error);
  EXPECT_THROW(table_index(-1, 0, 6), Error);
  EXPECT_THROW(table_index(0, 0, 0), Error);
}

}  // namespace
}  // namespace bytelm::blt
