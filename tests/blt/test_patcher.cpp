// test_patcher.cpp — every BLT patching rule on hand-made inputs whose expected lengths are worked out by hand
// (in the comments), the three alignments, max-length splitting, invariants over random inputs, the entropy
// helper, and the error paths.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "blt/hash.h"
#include "blt/patcher.h"
#include "util/error.h"

namespace bytelm::blt {
namespace {

using Lengths = std::vector<int64_t>;

// BOS followed by the bytes of text.
std::vector<int64_t> ids_of(const std::string& text) {
  std::vector<int64_t> ids = {kBos};
  for (char c : text) ids.push_back(byte_to_id(uint8_t(c)));
  return ids;
}

Lengths run(const PatcherOptions& options, const std::vector<int64_t>& ids, const std::vector<float>& entropies = {}) {
  return Patcher(options).patch_lengths(ids.data(), entropies.empty() ? nullptr : entropies.data(),
                                        int64_t(ids.size()));
}

PatcherOptions entropy_options(EntropyRule rule, std::optional<double> threshold,
                               std::optional<double> relative = std::nullopt,
                               Alignment alignment = Alignment::NextByte) {
  PatcherOptions o;
  o.mode = PatchingMode::Entropy;
  o.rule = rule;
  o.threshold = threshold;
  o.relative_threshold = relative;
  o.alignment = alignment;
  return o;
}

PatcherOptions mode_options(PatchingMode mode, Alignment alignment = Alignment::NextByte, int64_t patch_size = 4) {
  PatcherOptions o;
  o.mode = mode;
  o.alignment = alignment;
  o.patch_size = patch_size;
  return o;
}

const std::vector<int64_t> kEight = ids_of("abcdefg");  // N = 8
// H[p-1] decides whether p starts a patch; H[0] (at BOS) is never used.
const std::vector<float> kH1 = {9.0f, 0.5f, 2.0f, 0.1f, 0.2f, 3.0f, 0.3f, 1.5f};

TEST(BltPatcher, GlobalThresholdAlignments) {
  // theta = 1: p = 3 (H2 = 2.0), 6 (H5 = 3.0), 8 (H7 = 1.5, the next byte) start patches.
  // NextByte: starts 0 1 3 6 8 over 9 positions -> 1 2 3 2 1.
  EXPECT_EQ(run(entropy_options(EntropyRule::Global, 1.0), kEight, kH1), (Lengths{1, 2, 3, 2, 1}));
  // SeenOnly: p = 8 is not covered -> 1 2 3 2 (sum 8).
  EXPECT_EQ(run(entropy_options(EntropyRule::Global, 1.0, {}, Alignment::SeenOnly), kEight, kH1),
            (Lengths{1, 2, 3, 2}));
  // HuggingFace: the last patch ends at N - 1 = 7, so the next byte's patch is empty -> 1 2 3 2 0.
  EXPECT_EQ(run(entropy_options(EntropyRule::Global, 1.0, {}, Alignment::HuggingFace), kEight, kH1),
            (Lengths{1, 2, 3, 2, 0}));
  // Lower H7: the next byte continues patch 3 -> NextByte 1 2 3 3, HuggingFace 1 2 3 2.
  std::vector<float> h = kH1;
  h[7] = 0.5f;
  EXPECT_EQ(run(entropy_options(EntropyRule::Global, 1.0), kEight, h), (Lengths{1, 2, 3, 3}));
  EXPECT_EQ(run(entropy_options(EntropyRule::Global, 1.0, {}, Alignment::HuggingFace), kEight, h),
            (Lengths{1, 2, 3, 2}));
  // Strictly greater: an entropy equal to the threshold does not start a patch.
  h = kH1;
  h[2] = 1.0f;
  EXPECT_EQ(run(entropy_options(EntropyRule::Global, 1.0), kEight, h), (Lengths{1, 5, 2, 1}));
  // A huge threshold leaves [BOS] and one patch for everything else.
  EXPECT_EQ(run(entropy_options(EntropyRule::Global, 100.0), kEight, kH1), (Lengths{1, 8}));
  EXPECT_EQ(run(entropy_options(EntropyRule::Global, 100.0, {}, Alignment::HuggingFace), kEight, kH1), (Lengths{1, 7}));
}

TEST(BltPatcher, GlobalThresholdMaxLength) {
  PatcherOptions o = entropy_options(EntropyRule::Global, 1.0);
  o.max_patch_length = 2;
  // 1 2 3 2 1 -> the 3 splits into 2 + 1.
  EXPECT_EQ(run(o, kEight, kH1), (Lengths{1, 2, 2, 1, 2, 1}));
  // HF: 1 2 3 2 0 -> process_patch_lengths drops the 0, then splits: 1 2 2 1 2 (sum 8).
  o.alignment = Alignment::HuggingFace;
  EXPECT_EQ(run(o, kEight, kH1), (Lengths{1, 2, 2, 1, 2}));
}

TEST(BltPatcher, RelativeRule) {
  // theta_r = 0.5 on kH1: p = 2 always; p = 3: 2.0 - 0.5 = 1.5 yes; p = 4: -1.9; p = 5: 0.1; p = 6: 2.8 yes;
  // p = 7: -2.7; p = 8: 1.2 yes. Starts 0 1 2 3 6 8 -> 1 1 1 3 2 1.
  EXPECT_EQ(run(entropy_options(EntropyRule::Relative, std::nullopt, 0.5), kEight, kH1), (Lengths{1, 1, 1, 3, 2, 1}));
  // H3 = {0, .1, .2, .9, .1, 3, .3, 1.5}: p = 3: 0.1 no; p = 4: 0.7 yes; p = 6: 2.9 yes; p = 8: 1.2 yes.
  const std::vector<float> h3 = {0.0f, 0.1f, 0.2f, 0.9f, 0.1f, 3.0f, 0.3f, 1.5f};
  EXPECT_EQ(run(entropy_options(EntropyRule::Relative, std::nullopt, 0.5), kEight, h3), (Lengths{1, 1, 2, 2, 2, 1}));
  // The global threshold plays no part in the relative rule.
  EXPECT_EQ(run(entropy_options(EntropyRule::Relative, 100.0, 0.5), kEight, h3), (Lengths{1, 1, 2, 2, 2, 1}));
}

TEST(BltPatcher, CombinedRule) {
  // theta = 1, theta_r = 0.5.
  // H2 = {0, .1, 2, 2.9, .1, 3, .3, 1.5}: p = 2 always; p = 3 never (official quirk, though 1.9 > .5 and
  // 2 > 1); p = 4: 0.9 > .5 and 2.9 > 1 yes; p = 5 no; p = 6 yes; p = 7 no; p = 8: 1.2 and 1.5 yes.
  // Starts 0 1 2 4 6 8 -> 1 1 2 2 2 1. (Relative alone would also start p = 3.)
  const std::vector<float> h2 = {0.0f, 0.1f, 2.0f, 2.9f, 0.1f, 3.0f, 0.3f, 1.5f};
  EXPECT_EQ(run(entropy_options(EntropyRule::Combined, 1.0, 0.5), kEight, h2), (Lengths{1, 1, 2, 2, 2, 1}));
  EXPECT_EQ(run(entropy_options(EntropyRule::Relative, std::nullopt, 0.5), kEight, h2), (Lengths{1, 1, 1, 1, 2, 2, 1}));
  EXPECT_EQ(run(entropy_options(EntropyRule::Global, 1.0), kEight, h2), (Lengths{1, 2, 1, 2, 2, 1}));
  // H3: p = 4 rises by 0.7 but H3 = 0.9 <= 1, so only 6 and 8 -> starts 0 1 2 6 8 -> 1 1 4 2 1.
  const std::vector<float> h3 = {0.0f, 0.1f, 0.2f, 0.9f, 0.1f, 3.0f, 0.3f, 1.5f};
  EXPECT_EQ(run(entropy_options(EntropyRule::Combined, 1.0, 0.5), kEight, h3), (Lengths{1, 1, 4, 2, 1}));
}

TEST(BltPatcher, TopKWithoutThreshold) {
  // N = 12; H5 = 5 (p = 6) is the largest, H11 = 2 (p = 12, the next byte) second, the rest tie at 1.
  const std::vector<int64_t> ids = ids_of("abcdefghijk");
  const std::vector<float> h = {0, 1, 1, 1, 1, 5, 1, 1, 1, 1, 1, 2};
  PatcherOptions o = entropy_options(EntropyRule::Global, std::nullopt);
  o.patch_size = 4;  // k = 12 / 4 - 2 = 1: p = 6 -> starts 0 1 6 over 13 -> 1 5 7
  EXPECT_EQ(run(o, ids, h), (Lengths{1, 5, 7}));
  o.patch_size = 3;  // k = 2: p = 6, 12 -> 1 5 6 1
  EXPECT_EQ(run(o, ids, h), (Lengths{1, 5, 6, 1}));
  o.alignment = Alignment::SeenOnly;  // p = 12 is still picked but is not covered: 1 5 6
  EXPECT_EQ(run(o, ids, h), (Lengths{1, 5, 6}));
  o.alignment = Alignment::NextByte;
  o.patch_size = 2;  // k = 4: 6, 12, then the ties 2 and 3 (earlier first) -> starts 0 1 2 3 6 12
  EXPECT_EQ(run(o, ids, h), (Lengths{1, 1, 1, 3, 6, 1}));
  // Too short for any extra start: k = 4 / 4 - 2 < 0 -> none.
  o.patch_size = 4;
  EXPECT_EQ(run(o, ids_of("abc"), {0, 1, 2, 3}), (Lengths{1, 4}));
}

TEST(BltPatcher, StaticAndByte) {
  const std::vector<int64_t> ten = ids_of("abcdefghi");  // N = 10
  // [BOS] alone, then 4 at a time: NextByte covers 11 -> 1 4 4 2; SeenOnly covers 10 -> 1 4 4 1.
  EXPECT_EQ(run(mode_options(PatchingMode::Static, Alignment::NextByte, 4), ten), (Lengths{1, 4, 4, 2}));
  EXPECT_EQ(run(mode_options(PatchingMode::Static, Alignment::SeenOnly, 4), ten), (Lengths{1, 4, 4, 1}));
  EXPECT_EQ(run(mode_options(PatchingMode::Static, Alignment::NextByte, 1), ten), Lengths(11, 1));
  EXPECT_EQ(run(mode_options(PatchingMode::Static, Alignment::NextByte, 100), ten), (Lengths{1, 10}));
  EXPECT_EQ(run(mode_options(PatchingMode::Byte, Alignment::NextByte), ten), Lengths(11, 1));
  EXPECT_EQ(run(mode_options(PatchingMode::Byte, Alignment::SeenOnly), ten), Lengths(10, 1));
  // HF's non-entropy fallback is N + 1 patches of one byte.
  EXPECT_EQ(run(mode_options(PatchingMode::Byte, Alignment::HuggingFace), ten), Lengths(11, 1));
  // Just BOS.
  const std::vector<int64_t> bos = {kBos};
  EXPECT_EQ(run(mode_options(PatchingMode::Static, Alignment::NextByte), bos), (Lengths{1, 1}));
  EXPECT_EQ(run(mode_options(PatchingMode::Static, Alignment::SeenOnly), bos), (Lengths{1}));
  EXPECT_EQ(run(entropy_options(EntropyRule::Global, 1.0, {}, Alignment::HuggingFace), bos, {3.0f}), (Lengths{1, 0}));
}

TEST(BltPatcher, MaxLengthSplitting) {
  PatcherOptions o = mode_options(PatchingMode::Static, Alignment::NextByte, 4);
  o.max_patch_length = 3;  // 1 4 4 2 -> 1 3 1 3 1 2
  EXPECT_EQ(run(o, ids_of("abcdefghi")), (Lengths{1, 3, 1, 3, 1, 2}));
  EXPECT_EQ(split_long_patches({7, 6, 3, 1}, 3, false), (Lengths{3, 3, 1, 3, 3, 3, 1}));
  EXPECT_EQ(split_long_patches({1, 4, 0}, 2, false), (Lengths{1, 2, 2, 0}));
  EXPECT_EQ(split_long_patches({1, 4, 0}, 2, true), (Lengths{1, 2, 2}));
  EXPECT_EQ(split_long_patches({5}, 1, false), Lengths(5, 1));
}

TEST(BltPatcher, SpaceRule) {
  // Space-like: specials, ASCII other than letters and digits, UTF-8 lead bytes (é = C3 A9).
  //   pos: 0   1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17
  //        BOS H i , _ y o u ! _ c  a  f  C3 A9 _  o  k
  // Ends (first of a space-like run): 3 ",", 8 "!", 13 C3, 15 " " -> starts 0 1 4 9 14 16.
  const std::vector<int64_t> ids = ids_of("Hi, you! caf\xC3\xA9 ok");
  ASSERT_EQ(ids.size(), 18u);
  EXPECT_EQ(run(mode_options(PatchingMode::Space), ids), (Lengths{1, 3, 5, 5, 2, 3}));
  EXPECT_EQ(run(mode_options(PatchingMode::Space, Alignment::SeenOnly), ids), (Lengths{1, 3, 5, 5, 2, 2}));
  // A trailing space ends "ab ", so the next byte is a patch of its own (dropped without it).
  EXPECT_EQ(run(mode_options(PatchingMode::Space), ids_of("ab ")), (Lengths{1, 3, 1}));
  EXPECT_EQ(run(mode_options(PatchingMode::Space, Alignment::SeenOnly), ids_of("ab ")), (Lengths{1, 3}));
  // Only the first of a run ends a patch: "a", " " | " ", " ", "b" -> starts 0 1 3.
  EXPECT_EQ(run(mode_options(PatchingMode::Space), ids_of("a   b")), (Lengths{1, 2, 4}));
  // Digits and letters never end one; continuation bytes (0x80..0xBF) neither.
  EXPECT_EQ(run(mode_options(PatchingMode::Space), ids_of("x9Z\x80\xBFq")), (Lengths{1, 7}));
  // Special ids always end a patch, even right after another special: BOS a EOS BOS b c -> starts 0 1 3 4.
  const std::vector<int64_t> specials = {kBos, byte_to_id('a'), kEos, kBos, byte_to_id('b'), byte_to_id('c')};
  EXPECT_EQ(run(mode_options(PatchingMode::Space), specials), (Lengths{1, 2, 1, 3}));
}

// Deterministic pseudo-random numbers, so failures reproduce.
struct Lcg {
  uint64_t state;
  uint64_t next() { return (state = state * 6364136223846793005ull + 1442695040888963407ull) >> 33; }
  float uniform() { return float(next() % 10000) / 2500.0f; }  // [0, 4)
};

TEST(BltPatcher, InvariantsOverRandomInputs) {
  Lcg rng{42};
  std::vector<PatcherOptions> all;
  for (Alignment a : {Alignment::NextByte, Alignment::SeenOnly, Alignment::HuggingFace}) {
    all.push_back(entropy_options(EntropyRule::Global, 1.5, {}, a));
    all.push_back(entropy_options(EntropyRule::Global, std::nullopt, {}, a));
    all.push_back(entropy_options(EntropyRule::Relative, std::nullopt, 0.3, a));
    all.push_back(entropy_options(EntropyRule::Combined, 1.0, 0.2, a));
    for (PatchingMode m : {PatchingMode::Static, PatchingMode::Byte, PatchingMode::Space})
      all.push_back(mode_options(m, a, 3));
  }
  const size_t base = all.size();
  for (size_t i = 0; i < base; ++i) {
    PatcherOptions o = all[i];
    o.max_patch_length = 2;
    all.push_back(o);
  }
  for (int64_t n = 1; n <= 40; ++n) {
    std::vector<int64_t> ids = {kBos};
    std::vector<float> h = {rng.uniform()};
    for (int64_t i = 1; i < n; ++i) {
      ids.push_back(int64_t(rng.next() % kVocab));
      h.push_back(rng.uniform());
    }
    for (const PatcherOptions& o : all) {
      Lengths lengths = run(o, ids, h);
      const bool hf_entropy = o.alignment == Alignment::HuggingFace && o.mode == PatchingMode::Entropy;
      const int64_t expected_sum = o.alignment == Alignment::SeenOnly || hf_entropy ? n : n + 1;
      ASSERT_EQ(std::accumulate(lengths.begin(), lengths.end(), int64_t(0)), expected_sum) << n;
      ASSERT_EQ(lengths[0], 1);
      for (size_t i = 0; i < lengths.size(); ++i) {
        const bool may_be_empty = hf_entropy && !o.max_patch_length && i + 1 == lengths.size();
        ASSERT_GE(lengths[i], may_be_empty ? 0 : 1) << n << " " << i;
        if (o.max_patch_length) {
          ASSERT_LE(lengths[i], *o.max_patch_length);
        }
      }
    }
  }
}

TEST(BltPatcher, EntropyFromLogits) {
  const int64_t V = kVocab;
  std::vector<float> logits(3 * V, 0.0f), out(3, -1.0f);
  // Row 0 uniform: ln 260. Row 1: p = (1/4, 3/4) from logits (0, ln 3), the rest -inf. Row 2: one huge logit.
  logits[V + 0] = 0.0f;
  logits[V + 1] = std::log(3.0f);
  for (int64_t v = 2; v < V; ++v) logits[V + v] = -std::numeric_limits<float>::infinity();
  logits[2 * V + 7] = 1e30f;
  entropy_from_logits(logits.data(), 3, V, out.data());
  EXPECT_NEAR(out[0], std::log(260.0), 1e-5);
  EXPECT_NEAR(out[1], -(0.25 * std::log(0.25) + 0.75 * std::log(0.75)), 1e-6);
  EXPECT_NEAR(out[2], 0.0, 1e-6);
  // Shift invariance, with logits large enough that a naive exp would overflow.
  std::vector<float> a = {1.0f, 2.0f, 3.0f, -4.0f}, b = {1001.0f, 1002.0f, 1003.0f, 996.0f};
  float ha = 0, hb = 0;
  entropy_from_logits(a.data(), 1, 4, &ha);
  entropy_from_logits(b.data(), 1, 4, &hb);
  EXPECT_NEAR(ha, hb, 1e-6);
  EXPECT_GT(ha, 0.0f);
  EXPECT_LT(ha, std::log(4.0f));
}

TEST(BltPatcher, MeanBytesPerPatch) {
  EXPECT_DOUBLE_EQ(mean_bytes_per_patch({1, 2, 3, 2, 1}), 9.0 / 5.0);
  EXPECT_DOUBLE_EQ(mean_bytes_per_patch({1, 2, 3, 2, 0}), 2.0);  // an empty patch is not a patch
  EXPECT_THROW(mean_bytes_per_patch({}), Error);
  EXPECT_THROW(mean_bytes_per_patch({0}), Error);
  EXPECT_THROW(mean_bytes_per_patch({1, -1}), Error);
}

TEST(BltPatcher, Errors) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(Patcher(entropy_options(EntropyRule::Global, nan)), Error);
  EXPECT_THROW(Patcher(entropy_options(EntropyRule::Relative, std::nullopt, nan)), Error);
  EXPECT_THROW(Patcher(entropy_options(EntropyRule::Relative, 1.0)), Error);                // no relative threshold
  EXPECT_THROW(Patcher(entropy_options(EntropyRule::Combined, std::nullopt, 0.5)), Error);  // no global one
  EXPECT_THROW(Patcher(mode_options(PatchingMode::Static, Alignment::NextByte, 0)), Error);
  PatcherOptions o = mode_options(PatchingMode::Byte);
  o.max_patch_length = 0;
  EXPECT_THROW(Patcher{o}, Error);
  EXPECT_THROW(split_long_patches({3}, 0, false), Error);

  Patcher entropy(entropy_options(EntropyRule::Global, 1.0));
  EXPECT_TRUE(entropy.needs_entropies());
  EXPECT_THROW(entropy.patch_lengths(kEight.data(), nullptr, 8), Error);     // entropies missing
  EXPECT_THROW(entropy.patch_lengths(kEight.data(), kH1.data(), 0), Error);  // no ids
  std::vector<float> h = kH1;
  h[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(entropy.patch_lengths(kEight.data(), h.data(), 8), Error);

  Patcher space(mode_options(PatchingMode::Space));
  EXPECT_FALSE(space.needs_entropies());
  for (int64_t bad : {int64_t(-1), kVocab}) {
    std::vector<int64_t> ids = {kBos, bad};
    EXPECT_THROW(space.patch_lengths(ids.data(), nullptr, 2), Error);
  }

  float out = 0;
  std::vector<float> nan_row = {0.0f, std::numeric_limits<float>::quiet_NaN()};
  std::vector<float> inf_row = {0.0f, std::numeric_limits<float>::infinity()};
  const float minus_inf = -std::numeric_limits<float>::infinity();
  std::vector<float> empty_row = {minus_inf, minus_inf};
  EXPECT_THROW(entropy_from_logits(nan_row.data(), 1, 2, &out), Error);
  EXPECT_THROW(entropy_from_logits(inf_row.data(), 1, 2, &out), Error);
  EXPECT_THROW(entropy_from_logits(empty_row.data(), 1, 2, &out), Error);
  EXPECT_THROW(entropy_from_logits(nan_row.data(), 1, 0, &out), Error);
  EXPECT_THROW(entropy_from_logits(nan_row.data(), -1, 2, &out), Error);
}

}  // namespace
}  // namespace bytelm::blt
