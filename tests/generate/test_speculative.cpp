// test_speculative.cpp — speculative decoding: greedy output equals generate() byte for byte (Transformer
// and MEGABYTE targets, other or identical drafts, sliding windows, stop strings, repetition penalty);
// sampled output keeps the target's distribution (the exact accept/resample rule on hand-made p and q, and
// the first two bytes of tiny models over many seeds against their exact distribution, by chi-square);
// drafts that cannot draft are refused.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <tuple>

#include "common/test_device.h"
#include "generate/generate.h"
#include "generate/speculative.h"
#include "model/config.h"
#include "model/factory.h"
#include "model/model.h"
#include "util/error.h"

using namespace bytelm;
using bytelm::testing::test_device;
using bytelm::testing::tiny_model;

namespace {

GenerateOptions options(double temperature) {
  GenerateOptions o;
  o.device = test_device();
  o.precision = "fp32";
  o.temperature = temperature;
  return o;
}

std::string plain(LanguageModelImpl& model, const GenerateOptions& o) {
  return generate(model, o, [](uint8_t) {});
}

std::string speculative(LanguageModelImpl& target, LanguageModelImpl& draft, const GenerateOptions& o,
                        const SpeculativeOptions& s, SpeculativeStats* stats = nullptr) {
  std::string streamed;
  auto out = generate_speculative(
      target, draft, o, s, [&](uint8_t b) { streamed.push_back(char(b)); }, stats);
  EXPECT_EQ(out, streamed);
  return out;
}

// A draft close to `target` but not equal: the same tiny preset and seed with noise on the output head, so
// some drafted bytes are accepted and some rejected.
LanguageModel perturbed_copy(const std::string& name, uint64_t seed) {
  auto model = tiny_model(name, seed);
  torch::NoGradGuard no_grad;
  torch::manual_seed(99);
  for (auto& p : model->named_parameters())
    if (p.key().find("head") != std::string::npos) p.value().add_(torch::randn_like(p.value()) * p.value().std());
  return model;
}

}  // namespace

TEST(Speculative, GreedyEqualsGenerate) {
  const std::vector<std::string> prompts{"", "The", "a longer prompt, 30 bytes....."};
  for (const std::string target_name : {"transformer", "megabyte", "blt"}) {
    auto target = tiny_model(target_name, 5);
    auto same = tiny_model(target_name, 5);  // the target's weights in a model of its own (own caches)
    auto other = tiny_model("transformer", 8);
    auto close = perturbed_copy(target_name, 5);
    for (const auto& prompt : prompts) {
      // (repetition penalty, k, p_min): p_min = 1 never drafts (every round a plain step).
      for (const auto& [penalty, k, p_min] : std::vector<std::tuple<double, int64_t, double>>{
               {1.0, 1, 0.0}, {1.0, 8, 0.0}, {1.3, 4, 0.0}, {1.0, 4, 1.0}}) {
        auto o = options(0);
        o.prompt = prompt;
        o.max_bytes = 100;  // past the tiny context of 64: windows slide
        o.repetition_penalty = penalty;
        const std::string want = plain(*target, o);
        SpeculativeOptions s;
        s.draft_max = k;
        s.draft_p_min = p_min;
        SpeculativeStats stats;
        EXPECT_EQ(speculative(*target, *same, o, s, &stats), want) << target_name << " same k=" << k;
        EXPECT_EQ(stats.accepted, stats.drafted) << target_name << " k=" << k;  // the same model drafts
        EXPECT_EQ(stats.drafted > 0, p_min < 1) << target_name << " k=" << k;
        EXPECT_EQ(stats.generated, 100);
        EXPECT_EQ(speculative(*target, *other, o, s), want) << target_name << " other k=" << k;
        EXPECT_EQ(speculative(*target, *close, o, s), want) << target_name << " close k=" << k;
      }
    }
  }
}

TEST(Speculative, BltDraftsWithItsOwnEntropyModel) {
  torch::manual_seed(5);
  auto target = make_model(load_config("tiny", "blt"));  // entropy patching: it has an entropy model
  target->to(torch::Device(test_device()));
  target->eval();
  auto draft = target->entropy_patcher();
  ASSERT_TRUE(draft);
  auto o = options(0);
  o.prompt = "It is";
  o.max_bytes = 80;
  SpeculativeOptions s;
  s.draft_p_min = 0;
  SpeculativeStats stats;
  EXPECT_EQ(speculative(*target, *draft, o, s, &stats), plain(*target, o));
  EXPECT_GT(stats.drafted, 0);
}

TEST(Speculative, StopStringAndMaxBytesCutTheBlock) {
  auto target = tiny_model("transformer", 5);
  auto same = tiny_model("transformer", 5);
  auto o = options(0);
  o.prompt = "The";
  o.max_bytes = 40;
  const std::string full = plain(*target, o);
  SpeculativeOptions s;
  s.draft_max = 8;
  s.draft_p_min = 0;
  for (int64_t max_bytes : {1, 2, 7, 9, 40}) {
    o.max_bytes = max_bytes;
    EXPECT_EQ(speculative(*target, *same, o, s), full.substr(0, size_t(max_bytes)));
  }
  o.max_bytes = 40;
  o.stop = {full.substr(10, 3)};
  const std::string stopped = plain(*target, o);
  ASSERT_LE(stopped.size(), 13u);
  EXPECT_EQ(speculative(*target, *same, o, s), stopped);
}

TEST(Speculative, ResidualMakesTheOutputExact) {
  // Output of one round with one drafted byte x ~ q: x with probability q(x) min(1, p/q), else a draw from
  // norm(max(0, p - q)). Its distribution must be p.
  const std::vector<std::vector<double>> cases_p{{0.5, 0.3, 0.2, 0.0}, {0.1, 0.1, 0.1, 0.7}, {0, 0, 1, 0}};
  const std::vector<std::vector<double>> cases_q{{0.2, 0.2, 0.2, 0.4}, {0.7, 0.1, 0.2, 0.0}, {1, 0, 0, 0}};
  for (size_t c = 0; c < cases_p.size(); ++c) {
    const auto &p = cases_p[c], &q = cases_q[c];
    const auto r = residual_distribution(p, q);
    double reject = 0;
    for (size_t x = 0; x < p.size(); ++x) reject += q[x] * (1 - std::min(1.0, q[x] > 0 ? p[x] / q[x] : 1.0));
    for (size_t y = 0; y < p.size(); ++y) {
      const double accept_y = q[y] > 0 ? q[y] * std::min(1.0, p[y] / q[y]) : 0.0;
      EXPECT_NEAR(accept_y + reject * r[y], p[y], 1e-12) << "case " << c << " byte " << y;
    }
  }
  // verify_draft draws by that rule: over many rounds with x ~ q, the first emitted byte follows p[0] and,
  // after an accepted x, the bonus byte follows p[1] (fixed seed: deterministic).
  const std::vector<std::vector<double>> p{{0.5, 0.3, 0.2, 0.0}, {0.25, 0.25, 0.0, 0.5}};
  const std::vector<std::vector<double>> q{{0.2, 0.2, 0.2, 0.4}};
  std::mt19937_64 rng(1);
  std::vector<double> first(4, 0), bonus(4, 0);
  double accepted = 0;
  const int N = 200000;
  for (int i = 0; i < N; ++i) {
    const int x = std::discrete_distribution<int>(q[0].begin(), q[0].end())(rng);
    const Verdict v = verify_draft(p, q, {x}, rng);
    first[size_t(v.accepted == 1 ? x : v.next)] += 1;
    if (v.accepted == 1) {
      bonus[size_t(v.next)] += 1;
      accepted += 1;
    }
  }
  for (size_t y = 0; y < 4; ++y) {
    EXPECT_NEAR(first[y] / N, p[0][y], 0.005) << y;  // 4.5 standard deviations at most
    EXPECT_NEAR(bonus[y] / accepted, p[1][y], 0.008) << y;
  }
  EXPECT_NEAR(accepted / N, 0.2 + 0.2 + 0.2, 0.005);  // sum of min(p, q)
  // Greedy: one-hot p and q accept exactly when they agree.
  const Verdict agree = verify_draft({{0, 1}, {1, 0}}, {{0, 1}}, {1}, rng);
  EXPECT_EQ(agree.accepted, 1);
  EXPECT_EQ(agree.next, 0);
  const Verdict differ = verify_draft({{0, 1}, {1, 0}}, {{1, 0}}, {0}, rng);
  EXPECT_EQ(differ.accepted, 0);
  EXPECT_EQ(differ.next, 1);
}

TEST(Speculative, SamplingKeepsTheTargetsDistribution) {
  c10::InferenceMode inference;
  auto target = tiny_model("transformer", 5);
  auto draft = perturbed_copy("transformer", 5);
  auto o = options(0.5);
  o.top_k = 4;
  o.prompt = "ab";
  o.max_bytes = 2;
  // The exact distribution of the first two bytes under the target's sampler.
  std::map<std::string, double> exact;
  auto dist = [&](const std::string& text) {
    target->start(1);
    auto ids = torch::tensor(std::vector<int64_t>(text.begin(), text.end())).view({1, -1});
    auto l = target->feed(ids.to(torch::Device(test_device())));
    auto host = l.select(1, int64_t(text.size()) - 1).view({-1}).to(torch::kCPU, torch::kFloat32).contiguous();
    return sampling_distribution(host.data_ptr<float>(), 256, o, text);
  };
  const auto p1 = dist(o.prompt);
  for (int a = 0; a < 256; ++a) {
    if (p1[size_t(a)] == 0) continue;
    const auto p2 = dist(o.prompt + char(a));
    for (int b = 0; b < 256; ++b)
      if (p2[size_t(b)] > 0) exact[std::string{char(a), char(b)}] = p1[size_t(a)] * p2[size_t(b)];
  }
  ASSERT_EQ(exact.size(), 16u);
  // Chi-square of 2000 seeds against it: 15 degrees of freedom, 37.7 is the 0.001 critical value.
  SpeculativeOptions s;
  s.draft_p_min = 0;
  auto chi_square = [&](const std::function<std::string(const GenerateOptions&)>& run) {
    std::map<std::string, double> seen;
    const int N = 2000;
    for (int seed = 0; seed < N; ++seed) {
      o.seed = uint64_t(seed);
      seen[run(o)] += 1;
    }
    double chi = 0;
    for (const auto& [bytes, prob] : exact) chi += std::pow(seen[bytes] - N * prob, 2) / (N * prob);
    EXPECT_EQ(seen.size(), exact.size());  // nothing outside the support
    return chi;
  };
  SpeculativeStats all;
  const double chi_spec = chi_square([&](const GenerateOptions& g) {
    SpeculativeStats st;
    auto out = speculative(*target, *draft, g, s, &st);
    all.drafted += st.drafted;
    all.accepted += st.accepted;
    return out;
  });
  const double chi_plain = chi_square([&](const GenerateOptions& g) { return plain(*target, g); });
  EXPECT_LT(chi_spec, 37.7);
  EXPECT_LT(chi_plain, 37.7);
  // Both paths of the rule ran: some drafted bytes were accepted, some rejected.
  EXPECT_GT(all.acceptance(), 0.2);
  EXPECT_LT(all.acceptance(), 0.95);
}

TEST(Speculative, RefusesDraftsThatCannotDraft) {
  auto target = tiny_model("transformer", 5);
  auto bpe = tiny_model("bpe", 5);
  auto cfg = load_config("tiny", "megabyte");
  cfg.cross_patch = 2;
  auto xpatch = make_model(cfg);
  SpeculativeOptions s;
  EXPECT_THROW(check_speculative(*target, *bpe, s), Error);
  EXPECT_THROW(check_speculative(*xpatch, *target, s), Error);
  EXPECT_NO_THROW(check_speculative(*target, *target, s));
  s.draft_max = 0;
  EXPECT_THROW(check_speculative_options(s), Error);
  s.draft_max = 4;
  s.draft_p_min = 1.5;
  EXPECT_THROW(check_speculative_options(s), Error);
}
