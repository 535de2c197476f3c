// test_generate.cpp — batched generation: several prompts of different lengths decoded together give
// each prompt's batch-1 output (greedy and sampled, through the sliding window, with stop strings).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/test_device.h"
#include "model/model.h"
#include "train/evaluate.h"

using namespace bytelm;
using bytelm::testing::test_device;

namespace {

LanguageModel tiny_model(const std::string& name) {
  torch::manual_seed(5);
  auto cfg = load_config("tiny", name);
  if (name == "blt") cfg.patching.mode = "space";
  auto model = make_model(cfg);
  model->to(torch::Device(test_device()));
  model->eval();
  return model;
}

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
  o.stop = greedy[2].substr(5, 2);  // occurs in row 2's output at the latest at byte 7
  auto stopped = generate_batch(*model, prompts, o);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto& s = stopped[i];
    EXPECT_EQ(s, greedy[i].substr(0, s.size()));
    const bool ends_with_stop = s.size() >= 2 && s.compare(s.size() - 2, 2, o.stop) == 0;
    EXPECT_TRUE(ends_with_stop || s.size() == 40u) << i;
  }
  EXPECT_LE(stopped[2].size(), 7u);
}

INSTANTIATE_TEST_SUITE_P(All, BatchedGeneration, ::testing::Values("transformer", "megabyte", "blt"));

TEST(BatchedGeneration, RejectsPromptLongerThanContext) {
  auto model = tiny_model("megabyte");
  GenerateOptions o;
  o.device = test_device();
  EXPECT_THROW(generate_batch(*model, {"ok", std::string(64, 'x')}, o), std::exception);
  EXPECT_TRUE(generate_batch(*model, {}, o).empty());
}
