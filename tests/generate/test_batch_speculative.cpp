// test_batch_speculative.cpp — speculative decoding inside the batch decoder: with requests joining at random
// steps, cancelled early and sliding past the context, every row's bytes equal generate_speculative() alone
// with the same seed and limit (greedy and sampled, identical, related and unrelated drafts, Transformer,
// MEGABYTE and BLT targets), greedy rows equal plain generate(); rounds are counted; bad drafts are refused.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/batch_requests.h"
#include "common/test_device.h"
#include "generate/batch_decoder.h"
#include "generate/generate.h"
#include "generate/speculative.h"
#include "model/model.h"
#include "util/error.h"

using namespace bytelm;
using bytelm::testing::random_requests;
using bytelm::testing::Request;
using bytelm::testing::sampling;
using bytelm::testing::test_device;
using bytelm::testing::tiny_model;
using bytelm::testing::together;

namespace {

GenerateOptions alone_options(const Request& r, double temperature) {
  GenerateOptions o;
  static_cast<SamplingOptions&>(o) = sampling(temperature);
  o.device = test_device();
  o.precision = "fp32";
  o.prompt = r.prompt;
  o.seed = r.seed;
  o.max_bytes = r.max_bytes;
  return o;
}

}  // namespace

TEST(BatchSpeculative, EveryRowEqualsSpeculativeDecodingAlone) {
  for (const std::string target_name : {"transformer", "megabyte", "blt"}) {
    auto target = tiny_model(target_name, 5);
    auto same = tiny_model(target_name, 5);  // the target's weights with caches of its own
    auto other = tiny_model("entropy", 8);   // an unrelated small byte model
    const auto reqs = random_requests(target->config().context, 31);
    for (auto* draft : {same.get(), other.get()})
      for (double temperature : {0.0, 1.0}) {
        const int64_t k = temperature == 0 ? 4 : 3;
        const double p_min = draft == other.get() && temperature > 0 ? 0.03 : 0.0;  // random weights: small top p
        BatchDecoderOptions opt;
        opt.slots = 3;
        opt.prefill_chunk = 7;
        opt.draft = draft;
        opt.draft_max = k;
        opt.draft_p_min = p_min;
        BatchDecoderStats stats;
        const auto got = together(*target, reqs, temperature, opt, &stats);
        for (size_t i = 0; i < reqs.size(); ++i) {
          SpeculativeOptions s;
          s.draft_max = k;
          s.draft_p_min = p_min;
          const auto o = alone_options(reqs[i], temperature);
          std::string want = generate_speculative(*target, *draft, o, s, [](uint8_t) {});
          if (temperature == 0)
            EXPECT_EQ(want, generate(*target, o, [](uint8_t) {})) << target_name << " request " << i;
          if (reqs[i].cancel_after >= 0) want = want.substr(0, size_t(reqs[i].cancel_after));
          EXPECT_EQ(got[i], want) << target_name << " request " << i << " temperature " << temperature
                                  << (draft == same.get() ? " identical draft" : " unrelated draft");
        }
        EXPECT_GT(stats.draft_rounds, 0);
        EXPECT_GT(stats.drafted, 0) << target_name;
        if (draft == same.get() && temperature == 0) EXPECT_EQ(stats.draft_accepted, stats.drafted) << target_name;
        if (draft == other.get()) EXPECT_LT(stats.draft_accepted, stats.drafted) << target_name;
      }
  }
}

// Each byte a round emits carries the model's log-probabilities at its position, as plain decoding's do.
TEST(BatchSpeculative, BytesCarryTheModelsLogProbabilities) {
  c10::InferenceMode inference;
  auto target = tiny_model("megabyte", 5);
  auto draft = tiny_model("megabyte", 5);
  auto run = [&](LanguageModelImpl* d) {
    BatchDecoderOptions opt;
    opt.slots = 2;
    opt.device = test_device();
    opt.draft = d;
    opt.draft_p_min = 0;
    BatchDecoder dec(*target, opt);
    dec.add("The cat", sampling(0), 1);
    std::vector<std::pair<char, float>> got;  // each byte and its log-probability
    while (got.size() < 40)
      for (const auto& s : dec.step()) {
        EXPECT_NE(s.logp, nullptr);
        if (s.logp) got.emplace_back(s.bytes[0], s.logp[uint8_t(s.bytes[0])]);
      }
    got.resize(40);
    return got;
  };
  const auto plain = run(nullptr), drafted = run(draft.get());
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_EQ(drafted[i].first, plain[i].first) << i;
    EXPECT_NEAR(drafted[i].second, plain[i].second, 1e-4) << i;
  }
}

TEST(BatchSpeculative, RefusesWhatCannotDraft) {
  c10::InferenceMode inference;
  auto target = tiny_model("transformer", 5);
  auto hnet = tiny_model("hnet", 5);
  BatchDecoderOptions opt;
  opt.device = test_device();
  opt.draft = hnet.get();  // cannot roll its caches back
  EXPECT_THROW(BatchDecoder(*target, opt), Error);
  opt.draft = target.get();
  opt.draft_max = 0;
  EXPECT_THROW(BatchDecoder(*target, opt), Error);
  opt.draft_max = 4;
  opt.row_positions = false;
  EXPECT_THROW(BatchDecoder(*target, opt), Error);
}
