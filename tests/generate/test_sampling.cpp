// test_sampling.cpp — the byte sampler on hand-made logits: greedy, repetition penalty (CTRL's rule, within
// its window), top-k, min-p, top-p, and the range checks of every option.
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "generate/sampling.h"
#include "util/error.h"

using bytelm::SamplingOptions;

namespace {

std::set<int> drawn(const std::vector<float>& logits, const SamplingOptions& o, const std::string& recent = "") {
  std::set<int> seen;
  std::mt19937_64 rng(1);
  for (int i = 0; i < 2000; ++i) seen.insert(bytelm::sample_byte(logits.data(), int(logits.size()), o, rng, recent));
  return seen;
}

}  // namespace

TEST(Sampling, GreedyAndRepetitionPenalty) {
  std::vector<float> logits{3.0f, 2.0f, -1.0f, -0.5f};
  SamplingOptions o;
  o.temperature = 0;
  std::mt19937_64 rng(0);
  EXPECT_EQ(bytelm::sample_byte(logits.data(), 4, o, rng, ""), 0);
  o.repetition_penalty = 2.0;  // byte 0 seen: 3 / 2 = 1.5 < 2
  EXPECT_EQ(bytelm::sample_byte(logits.data(), 4, o, rng, std::string(1, '\0')), 1);
  // Negative logits are multiplied: byte 3 (-0.5 -> -1.0) falls below byte 2 (-1.0 stays).
  std::vector<float> negative{-2.0f, -3.0f, -1.0f, -0.5f};
  EXPECT_EQ(bytelm::sample_byte(negative.data(), 4, o, rng, "\x03"), 2);
  // Outside the window the byte is not penalised.
  o.repetition_window = 2;
  EXPECT_EQ(bytelm::sample_byte(logits.data(), 4, o, rng, std::string("\0\x02\x02", 3)), 0);
}

TEST(Sampling, FiltersKeepWhatTheyShould) {
  // Probabilities about 0.50, 0.30, 0.15, 0.05.
  std::vector<float> logits{std::log(0.50f), std::log(0.30f), std::log(0.15f), std::log(0.05f)};
  SamplingOptions o;
  EXPECT_EQ(drawn(logits, o), (std::set<int>{0, 1, 2, 3}));
  o.top_k = 2;
  EXPECT_EQ(drawn(logits, o), (std::set<int>{0, 1}));
  o.top_k = 0;
  o.min_p = 0.5;  // keep p >= 0.25
  EXPECT_EQ(drawn(logits, o), (std::set<int>{0, 1}));
  o.min_p = 0.2;  // keep p >= 0.10
  EXPECT_EQ(drawn(logits, o), (std::set<int>{0, 1, 2}));
  o.min_p = 0;
  o.top_p = 0.85;  // 0.5 + 0.3 + 0.15 reaches it
  EXPECT_EQ(drawn(logits, o), (std::set<int>{0, 1, 2}));
  o.top_p = 0.5;
  EXPECT_EQ(drawn(logits, o), (std::set<int>{0}));
  // top-p is taken over what min-p kept: {0, 1} renormalised to 0.625, 0.375.
  o.min_p = 0.5;
  o.top_p = 0.7;
  EXPECT_EQ(drawn(logits, o), (std::set<int>{0, 1}));
}

TEST(Sampling, RangeChecksNameTheFlag) {
  auto bad = [](SamplingOptions o, const std::string& flag) {
    try {
      bytelm::check_sampling(o);
      ADD_FAILURE() << flag << " accepted";
    } catch (const bytelm::Error& e) {
      EXPECT_NE(std::string(e.what()).find(flag), std::string::npos) << e.what();
    }
  };
  SamplingOptions o;
  bytelm::check_sampling(o);
  o.min_p = 1;
  bad(o, "--min-p");
  o = {};
  o.repetition_penalty = 0;
  bad(o, "--repetition-penalty");
  o = {};
  o.top_p = 0;
  bad(o, "--top-p");
  o = {};
  o.repetition_window = 0;
  bad(o, "--repetition-window");
}
