// test_generate.cpp — batched generation: several prompts of different lengths decoded together give
// each prompt's batch-1 output (greedy and sampled, through the sliding window, with stop strings);
// static-shape (CUDA-graph) decoding steps against the growing-cache ones.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/test_device.h"
#include "generate/generate.h"
#include "generate/static_decoder.h"
#include "model/blt.h"
#include "model/factory.h"
#include "model/model.h"
#include "util/device.h"
#include "util/error.h"

using namespace bytelm;
using bytelm::testing::test_device;

namespace {

LanguageModel tiny_model(const std::string& name) { return bytelm::testing::tiny_model(name, 5); }

std::vector<std::string> single(LanguageModelImpl& model, const std::vector<std::string>& prompts, GenerateOptions o) {
  std::vector<std::string> out;
  const uint64_t seed = o.seed;
  for (size_t i = 0; i < prompts.size(); ++i) {
    o.prompt = prompts[i];
    o.seed = seed + i;
    out.push_back(generate(model, o, [](uint8_t) {}));
  }
  return out;
}

class BatchedGeneration : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(BatchedGeneration, EqualsOnePromptAtATime) {
  auto model = tiny_model(GetParam());
  const std::vector<std::string> prompts{"", "The", "a longer prompt, 30 bytes.....", "x"};
  GenerateOptions o;
  o.device = test_device();
  o.precision = "fp32";
  // 100 bytes > the tiny context of 64: every row slides its window at least once.
  for (double temperature : {0.0, 1.0}) {
    o.temperature = temperature;
    o.max_bytes = 100;
    o.seed = 11;
    auto batched = generate_batch(*model, prompts, o);
    auto ref = single(*model, prompts, o);
    ASSERT_EQ(batched.size(), prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      EXPECT_EQ(batched[i].size(), 100u);
      EXPECT_EQ(batched[i], ref[i]) << GetParam() << " prompt " << i << " temperature " << temperature;
    }
  }
  // A stop string ends each row on its own.
  o.temperature = 0;
  o.max_bytes = 40;
  auto greedy = single(*model, prompts, o);
  const std::string stop = greedy[2].substr(5, 2);  // occurs in row 2's output at the latest at byte 7
  o.stop = {stop};
  auto stopped = generate_batch(*model, prompts, o);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto& s = stopped[i];
    EXPECT_EQ(s, greedy[i].substr(0, s.size()));
    const bool ends_with_stop = s.size() >= 2 && s.compare(s.size() - 2, 2, stop) == 0;
    EXPECT_TRUE(ends_with_stop || s.size() == 40u) << i;
  }
  EXPECT_LE(stopped[2].size(), 7u);
}

INSTANTIATE_TEST_SUITE_P(All, BatchedGeneration, ::testing::Values("transformer", "megabyte", "blt", "hnet"));

TEST(BatchedGeneration, RejectsPromptLongerThanContext) {
  auto model = tiny_model("megabyte");
  GenerateOptions o;
  o.device = test_device();
  EXPECT_THROW(generate_batch(*model, {"ok", std::string(64, 'x')}, o), std::exception);
  EXPECT_TRUE(generate_batch(*model, {}, o).empty());
}

namespace {
class StaticSteps : public ::testing::TestWithParam<std::string> {};
}  // namespace

// Static-shape steps (what CUDA graphs replay) give the logits of the growing-cache steps: after a prefill,
// across patch boundaries and attention-span buckets (64 -> 128 -> 256), and again after a restart that
// reuses the same tensors. On CUDA the steps run as captured graphs.
TEST_P(StaticSteps, MatchDynamicSteps) {
  torch::manual_seed(9);
  auto cfg = load_config("tiny", GetParam());
  cfg.context = 256;
  const torch::Device device(test_device());
  auto model = make_model(cfg);
  model->to(device);
  model->eval();
  c10::InferenceMode inference;
  const int64_t B = 2, T = cfg.context, prefill = 5;
  auto x = torch::randint(0, 256, {B, T}, torch::kLong).to(device);
  StaticDecoder steps(*model, device.is_cuda() && cuda_compiled());
  const void* output = nullptr;  // captured graphs write here: a restart must keep the same tensor
  for (int round = 0; round < 2; ++round) {
    const int64_t end = round == 0 ? T - 1 : 40;
    model->start(B);
    model->feed(x.narrow(1, 0, prefill));
    std::vector<torch::Tensor> dynamic;
    for (int64_t i = prefill; i < end; ++i) dynamic.push_back(model->feed(x.narrow(1, i, 1)).select(1, 0));
    model->start(B);
    model->feed(x.narrow(1, 0, prefill));
    for (int64_t i = prefill; i < end; ++i) {
      auto logits = steps.step(x.select(1, i));
      const double err = (logits - dynamic[size_t(i - prefill)]).abs().max().item<double>();
      ASSERT_LT(err, 1e-4) << GetParam() << " round " << round << " byte " << i;
    }
    EXPECT_EQ(model->decoded(), end);
    if (round == 1) EXPECT_EQ(model->static_logits().data_ptr(), output);
    output = model->static_logits().data_ptr();
    if (round == 0) EXPECT_THROW(steps.step(x.select(1, 0)), Error);  // past the context
  }
  if (device.is_cuda() && cuda_compiled()) EXPECT_GT(steps.graphs_captured(), 0);
}

// End to end: generation with static steps equals generation with dynamic ones (greedy, sliding window,
// batch 1 and batched).
TEST_P(StaticSteps, GenerationMatches) {
  auto model = tiny_model(GetParam());
  GenerateOptions o;
  o.device = test_device();
  o.precision = "fp32";
  o.temperature = 0;
  o.max_bytes = 100;
  o.prompt = "abc";
  o.decode = "dynamic";
  const std::string dynamic = generate(*model, o, [](uint8_t) {});
  o.decode = "static";
  EXPECT_EQ(generate(*model, o, [](uint8_t) {}), dynamic);
  const std::vector<std::string> prompts{"abc", "", "hello"};
  o.decode = "dynamic";
  auto batched_dynamic = generate_batch(*model, prompts, o);
  o.decode = "static";
  EXPECT_EQ(generate_batch(*model, prompts, o), batched_dynamic);
  EXPECT_EQ(batched_dynamic[0], dynamic);
}

INSTANTIATE_TEST_SUITE_P(All, StaticSteps, ::testing::Values("transformer", "megabyte"));

TEST(StaticSteps, ModesAndErrors) {
  auto blt = tiny_model("blt");
  const torch::Device cpu(torch::kCPU);
  EXPECT_FALSE(plan_steps("auto", *blt, cpu).static_steps);
  EXPECT_TRUE(plan_steps("static", *blt, cpu).static_steps);
  EXPECT_FALSE(plan_steps("static", *blt, cpu, 2).static_steps);  // BLT batches: growing caches
  auto mb = tiny_model("megabyte");
  EXPECT_TRUE(plan_steps("static", *mb, cpu).static_steps);
  EXPECT_FALSE(plan_steps("static", *mb, cpu).graphs);
  EXPECT_THROW(plan_steps("graphs", *mb, cpu), Error);
  EXPECT_THROW(plan_steps("fast", *mb, cpu), Error);
  EXPECT_FALSE(plan_steps("auto", *mb, cpu).static_steps);  // CPU: growing caches are faster
}

// BLT's static steps (entropy model step; then, its entropy read on the host, encoder + pooling + global +
// decoder) give the dynamic steps' logits, for entropy patching with patches of varied length and for
// space patching; and the same generations.
TEST(StaticStepsBlt, MatchDynamicSteps) {
  const torch::Device device(test_device());
  for (const std::string mode : {"entropy", "space"}) {
    auto model = std::dynamic_pointer_cast<BltImpl>(bytelm::testing::tiny_model("blt", 7));
    c10::InferenceMode inference;
    torch::manual_seed(3);
    const int64_t T = model->config().context;
    auto letters = torch::randint(97, 105, {1, T}, torch::kLong);
    auto x = torch::where(torch::rand({1, T}) < 0.2, torch::full({1, T}, 32, torch::kLong), letters).to(device);
    PatchingConfig p = model->config().patching;
    p.mode = mode;
    model->set_patching(p);
    if (mode == "entropy") {  // the median entropy: patches of varied length
      auto ids = torch::cat({torch::ones({1, 1}, x.options()), x + 4}, 1);
      auto h = model->entropies(ids).flatten();
      p.threshold = std::get<0>(h.sort()).select(0, h.numel() / 2).item<double>();
    }
    model->set_patching(p);
    model->start(1);
    model->feed(x.narrow(1, 0, 3));
    std::vector<torch::Tensor> dynamic;
    for (int64_t i = 3; i < T - 1; ++i) dynamic.push_back(model->feed(x.narrow(1, i, 1)).select(1, 0).clone());
    StaticDecoder steps(*model, device.is_cuda() && cuda_compiled());
    model->start(1);
    model->feed(x.narrow(1, 0, 3));
    for (int64_t i = 3; i < T - 1; ++i) {
      const double err = (steps.step(x.select(1, i)) - dynamic[size_t(i - 3)]).abs().max().item<double>();
      ASSERT_LT(err, 1e-4) << mode << " byte " << i;
    }
    GenerateOptions o;
    o.device = test_device();
    o.precision = "fp32";
    o.temperature = 0;
    o.max_bytes = 80;  // past the context of 64: the window slides
    o.prompt = "ab cd";
    o.decode = "dynamic";
    const std::string ref = generate(*model, o, [](uint8_t) {});
    o.decode = "static";
    EXPECT_EQ(generate(*model, o, [](uint8_t) {}), ref) << mode;
  }
}
