// test_rewind.cpp — rolling decoding caches back (speculative decoding): feed bytes, rewind r, feed other
// bytes gives the logits of a fresh start fed the kept bytes and the new ones (within 1e-5), for every
// model that can rewind, across MEGABYTE's patch boundaries and over batches of two rows; the models that
// cannot rewind say so.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <array>

#include <nlohmann/json.hpp>

#include "common/test_device.h"
#include "model/config.h"
#include "model/factory.h"
#include "model/model.h"
#include "util/error.h"

using namespace bytelm;
using bytelm::testing::test_device;

namespace {

// A tiny model: a preset's tiny config ("transformer", "megabyte", "entropy", "blt", "blt_entropy") or a MEGABYTE
// variant of P = 4 ("mb_conv", "mb_levels": 16-byte patches over 4-byte units, "mb_xpatch").
LanguageModel make(const std::string& name) {
  torch::manual_seed(3);
  if (name == "blt_entropy") {  // the tiny preset's entropy patching (tiny_model's BLT cuts at spaces)
    auto model = make_model(load_config("tiny", "blt"));
    model->to(torch::Device(test_device()));
    model->eval();
    return model;
  }
  if (name.rfind("mb_", 0) != 0) return bytelm::testing::tiny_model(name, 3);
  auto j = nlohmann::json::parse(R"({"model": "megabyte", "context": 64, "patch_size": 4, "init_std": 0.1,
    "global": {"layers": 2, "width": 64, "heads": 2}, "local": {"layers": 2, "width": 32, "heads": 2}})");
  if (name == "mb_conv") j["conv_kernels"] = {3, 5};
  if (name == "mb_xpatch") j["cross_patch"] = 2;
  if (name == "mb_levels") {
    j["patch_size"] = 16;
    j["levels"] = nlohmann::json::parse(R"([{"patch_size": 4, "layers": 1, "width": 32, "heads": 2}])");
  }
  auto model = make_model(ModelConfig::from_json(j));
  model->to(torch::Device(test_device()));
  model->eval();
  return model;
}

torch::Tensor random_bytes(int64_t B, int64_t n, int64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, 256, {B, n}, torch::TensorOptions().dtype(torch::kLong).device(test_device()));
}

// Logits of a fresh start fed `bytes` (B, n): the last `m` rows, (B, m, V).
torch::Tensor fresh(LanguageModelImpl& model, const torch::Tensor& bytes, int64_t m) {
  model.start(bytes.size(0));
  return model.feed(bytes).narrow(1, bytes.size(1) - m, m);
}

class Rewind : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(Rewind, EqualsAFreshStart) {
  c10::InferenceMode inference;
  auto model = make(GetParam());
  ASSERT_TRUE(model->can_rewind());
  // (bytes fed, bytes rewound, bytes fed after): within a patch, to a patch start, across one or several
  // patch boundaries (P = 4; 16 for mb_levels), everything, nothing.
  const std::vector<std::array<int64_t, 3>> cases{{10, 1, 3}, {10, 2, 5}, {10, 3, 1},  {13, 9, 7}, {21, 12, 9},
                                                  {9, 9, 4},  {6, 0, 3},  {33, 17, 2}, {17, 2, 18}};
  for (const auto& [n, r, m] : cases) {
    for (int64_t B : {1, 2}) {
      auto first = random_bytes(B, n, n), after = random_bytes(B, m, 100 + m);
      model->start(B);
      model->feed(first.narrow(1, 0, n / 2));  // fed in two calls, to see feed() continue across calls
      model->feed(first.narrow(1, n / 2, n - n / 2));
      model->rewind(r);
      EXPECT_EQ(model->decoded(), n - r);
      auto got = model->feed(after);
      auto want = fresh(*model, torch::cat({first.narrow(1, 0, n - r), after}, 1), m);
      EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-5))
          << GetParam() << " n=" << n << " r=" << r << " m=" << m << " B=" << B << " max diff "
          << (got - want).abs().max().item<double>();
    }
  }
}

TEST_P(Rewind, RepeatedRoundsLikeSpeculativeDecoding) {
  c10::InferenceMode inference;
  auto model = make(GetParam());
  auto bytes = random_bytes(1, 60, 7);
  // Rounds of 5 fed, 0..4 rewound: the kept bytes are a prefix of each block.
  model->start(1);
  std::vector<torch::Tensor> kept;
  int64_t pos = 0;
  torch::Tensor got;
  for (int64_t round = 0; pos + 5 <= 45; ++round) {
    auto block = bytes.narrow(1, pos, 5);
    got = model->feed(block);
    const int64_t r = round % 5;
    model->rewind(r);
    kept.push_back(block.narrow(1, 0, 5 - r));
    pos += 5;
  }
  auto tail = bytes.narrow(1, 50, 6);
  got = model->feed(tail);
  kept.push_back(tail);
  auto want = fresh(*model, torch::cat(kept, 1), 6);
  EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-5)) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(All, Rewind,
                         ::testing::Values("transformer", "entropy", "megabyte", "mb_conv", "mb_levels", "blt",
                                           "blt_entropy"));

TEST(Rewind, RefusedWhereNotImplemented) {
  for (const std::string name : {"mb_xpatch"}) {
    auto model = make(name);
    EXPECT_FALSE(model->can_rewind()) << name;
    model->start(1);
    model->feed(random_bytes(1, 5, 1));
    EXPECT_THROW(model->rewind(1), Error) << name;
  }
}

TEST(Rewind, RejectsMoreThanFed) {
  auto model = make("transformer");
  model->start(1);
  model->feed(random_bytes(1, 5, 1));
  EXPECT_THROW(model->rewind(6), Error);
  EXPECT_THROW(model->rewind(-1), Error);
  model->rewind(5);
  EXPECT_EQ(model->decoded(), 0);
}
