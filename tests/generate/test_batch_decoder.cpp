// test_batch_decoder.cpp — the batch decoder: with fixed seeds every request's bytes equal generate() alone,
// whatever rows join and leave around it and when (random join steps, rows cancelled early, windows that
// slide past the context), for every model kind (the BPE baseline over tokens too), at row positions and at
// shared positions; prefix reuse changes no byte and is counted; bad use is refused.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>

#include "common/batch_requests.h"
#include "common/test_device.h"
#include "generate/batch_decoder.h"
#include "generate/generate.h"
#include "generate/generate_tokens.h"
#include "model/config.h"
#include "model/factory.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

using namespace bytelm;
using bytelm::testing::random_requests;
using bytelm::testing::Request;
using bytelm::testing::sampling;
using bytelm::testing::test_device;
using bytelm::testing::together;

namespace {

std::string alone(LanguageModelImpl& model, const Request& r, double temperature) {
  GenerateOptions o;
  static_cast<SamplingOptions&>(o) = sampling(temperature);
  o.device = test_device();
  o.prompt = r.prompt;
  o.seed = r.seed;
  o.max_bytes = r.max_bytes;
  return generate(model, o, [](uint8_t) {});
}

struct Case {
  std::string model;
  bool row_positions;
};

class Together : public ::testing::TestWithParam<Case> {};

TEST_P(Together, EveryRequestGetsItsBytesAlone) {
  const Case c = GetParam();
  auto model = bytelm::testing::tiny_model(c.model, 4);
  const auto reqs = random_requests(model->config().context, 21);
  for (double temperature : {0.0, 1.0}) {
    BatchDecoderOptions opt;
    opt.slots = 4;
    opt.prefill_chunk = 5;
    opt.row_positions = c.row_positions;
    const auto got = together(*model, reqs, temperature, opt);
    for (size_t i = 0; i < reqs.size(); ++i) {
      const std::string want = alone(*model, reqs[i], temperature);
      if (reqs[i].cancel_after >= 0)
        EXPECT_EQ(got[i], want.substr(0, size_t(reqs[i].cancel_after))) << c.model << " request " << i;
      else
        EXPECT_EQ(got[i], want) << c.model << " request " << i << " at temperature " << temperature;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, Together,
                         ::testing::Values(Case{"transformer", true}, Case{"megabyte", true},
                                           Case{"transformer", false}, Case{"megabyte", false}, Case{"entropy", true},
                                           Case{"blt", true}, Case{"blt", false}, Case{"hnet", true},
                                           Case{"hnet", false}, Case{"megabyte_all", true}),
                         [](const auto& info) {
                           return info.param.model + (info.param.row_positions ? "_rows" : "_shared");
                         });

// The BPE baseline through the same decoder (its tokenizer given): prompts encoded, rows sampling tokens at
// their own positions (and at a shared one), windows sliding past the context in tokens: every request's bytes
// equal generate_tokens() alone.
TEST(BatchDecoder, TokenModelRowsGetTheirBytesAlone) {
  std::mt19937 rng(5);
  std::string text;
  const std::vector<std::string> words = {"the", "cat", "sat", "on", "mat", "truth", "universally", "acknowledged"};
  while (text.size() < 60000) text += words[rng() % words.size()] + (rng() % 9 ? " " : ".\n");
  TokenizerTrainOptions to;
  to.vocab = 300;
  const Tokenizer tok = Tokenizer::train({text}, to);
  torch::manual_seed(3);
  ModelConfig cfg = load_config("tiny", "bpe");
  cfg.vocab_size = tok.vocab_size();
  auto model = make_model(cfg);
  model->to(torch::Device(test_device()));
  model->eval();
  auto reqs = random_requests(cfg.context, 33);
  reqs[2].max_bytes = 4 * cfg.context;  // slides its window (in tokens) past the context
  for (bool rows : {true, false})
    for (double temperature : {0.0, 1.0}) {
      BatchDecoderOptions opt;
      opt.slots = 4;
      opt.prefill_chunk = 3;
      opt.row_positions = rows;
      opt.tokenizer = &tok;
      const auto got = together(*model, reqs, temperature, opt);
      for (size_t i = 0; i < reqs.size(); ++i) {
        GenerateOptions o;
        static_cast<SamplingOptions&>(o) = sampling(temperature);
        o.device = test_device();
        o.prompt = reqs[i].prompt;
        o.seed = reqs[i].seed;
        o.max_bytes = reqs[i].cancel_after >= 0 ? reqs[i].cancel_after : reqs[i].max_bytes;
        EXPECT_EQ(got[i], generate_tokens(*model, tok, o, [](uint8_t) {}))
            << "request " << i << (rows ? " rows" : " shared") << " at temperature " << temperature;
      }
    }
  BatchDecoderOptions opt;
  EXPECT_THROW(BatchDecoder(*model, opt), Error);  // no tokenizer
  opt.tokenizer = &tok;
  BatchDecoder dec(*model, opt);
  SamplingOptions penalty;
  penalty.repetition_penalty = 1.3;
  EXPECT_THROW(dec.add("the cat", penalty, 1), Error);
  EXPECT_THROW(dec.add(std::string(size_t(cfg.context) * 8, 'q'), SamplingOptions(), 1), Error);
}

TEST(BatchDecoder, PrefixReuseChangesNoByteAndIsCounted) {
  for (const char* name : {"transformer", "megabyte", "blt"}) {
    auto model = bytelm::testing::tiny_model(name, 9);
    std::vector<Request> reqs;
    for (int i = 0; i < 6; ++i)  // one system prompt, different endings, one after another
      reqs.push_back({"You are a helpful byte model. Q" + std::to_string(i), uint64_t(i), 6, int64_t(i) * 12, -1});
    BatchDecoderOptions opt;
    opt.slots = 2;
    BatchDecoderStats with, without;
    const auto a = together(*model, reqs, 1.0, opt, &with);
    opt.prefix_reuse = false;
    const auto b = together(*model, reqs, 1.0, opt, &without);
    EXPECT_EQ(a, b) << name;
    EXPECT_GE(with.prefix_hits, 4) << name;
    EXPECT_GE(with.prefix_bytes, 4 * 20) << name;
    EXPECT_EQ(without.prefix_hits, 0);
    EXPECT_LT(with.prefill_bytes, without.prefill_bytes) << name;
  }
}

// MEGABYTE rows that join at different steps with prompts of different lengths decode in phase (their patches
// close in the same step), a joining row waiting a few steps for it; their bytes stay their own (above).
TEST(BatchDecoder, MegabyteRowsDecodeInPhase) {
  auto model = bytelm::testing::tiny_model("megabyte", 11);
  const int64_t P = model->fixed_patch_size();
  ASSERT_GT(P, 1);
  c10::InferenceMode inference;
  BatchDecoderOptions opt;
  opt.slots = 4;
  opt.device = test_device();
  BatchDecoder dec(*model, opt);
  std::map<int64_t, int64_t> sampled;
  const std::vector<std::string> prompts{"abcde", "abcdefx", "qrstuvwxy", "z"};
  for (int64_t step = 0; step < 16; ++step) {
    if (step < 4) dec.add(prompts[size_t(step)], sampling(1.0), uint64_t(step));
    for (const auto& s : dec.step()) ++sampled[s.id];
  }
  ASSERT_EQ(sampled.size(), 4u);  // every row decodes
  for (int64_t slot = 0; slot < 4; ++slot)
    EXPECT_EQ(model->row_decoded(slot) % P, model->row_decoded(0) % P) << "slot " << slot;
  EXPECT_GT(dec.stats().phase_waits, 0);
}

TEST(BatchDecoder, RefusesBadUse) {
  auto model = bytelm::testing::tiny_model("transformer", 10);
  c10::InferenceMode inference;
  BatchDecoderOptions opt;
  opt.slots = 1;
  opt.device = test_device();
  BatchDecoder dec(*model, opt);
  EXPECT_TRUE(dec.row_positions());
  EXPECT_THROW(dec.add(std::string(size_t(model->config().context), 'a'), SamplingOptions(), 1), Error);
  dec.add("a", SamplingOptions(), 1);
  EXPECT_THROW(dec.add("b", SamplingOptions(), 1), Error);  // full
  opt.slots = 0;
  EXPECT_THROW(BatchDecoder(*model, opt), Error);
  auto bpe = bytelm::testing::tiny_model("bpe", 10);
  opt.slots = 1;
  EXPECT_THROW(BatchDecoder(*bpe, opt), Error);
}

}  // namespace
