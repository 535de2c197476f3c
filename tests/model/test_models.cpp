// test_models.cpp — shapes, causality and cached-vs-full parity for every model, config validation.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <tuple>

#include <nlohmann/json.hpp>

#include "common/test_device.h"
#include "model/blocks.h"
#include "model/factory.h"
#include "model/model.h"
#include "util/error.h"

using namespace bytelm;

namespace {

ModelConfig tiny(const std::string& model) { return load_config("tiny", model); }

// Random bytes on the test device ($BYTELM_TEST_DEVICE, default cpu).
torch::Tensor random_bytes(int64_t B, int64_t T, int64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, 256, {B, T}, torch::kLong).to(torch::Device(bytelm::testing::test_device()));
}

// Tolerances: exact on the CPU; on a GPU, kernels may differ between shapes (cached vs full passes).
const bool kOnGpu = bytelm::testing::test_device() != "cpu";
const float kSame = kOnGpu ? 1e-6f : 0.0f, kParity = kOnGpu ? 1e-4f : 1e-5f;

class Models : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(Models, ForwardShapes) {
  torch::manual_seed(0);
  auto cfg = tiny(GetParam());
  auto model = make_model(cfg);
  model->to(torch::Device(bytelm::testing::test_device()));
  for (int64_t T : {cfg.context, cfg.context - 3, int64_t(1)}) {
    auto logits = model->forward(random_bytes(3, T, 1));
    EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{3, T, 256 + model->vocab_offset()}));
    EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
  }
}

// Changing byte j must not change the prediction of any byte at or before j.
TEST_P(Models, Causality) {
  torch::manual_seed(0);
  auto cfg = tiny(GetParam());
  auto model = make_model(cfg);
  model->to(torch::Device(bytelm::testing::test_device()));
  torch::NoGradGuard no_grad;
  const int64_t T = cfg.context;
  auto x = random_bytes(1, T, 2);
  auto base = model->forward(x);
  for (int64_t j : {int64_t(0), int64_t(1), cfg.patch_size - 1, cfg.patch_size, T / 2 + 1, T - 1}) {
    auto y = x.clone();
    y[0][j] = (y[0][j].item<int64_t>() + 97) % 256;
    auto out = model->forward(y);
    auto same = (out.narrow(1, 0, j + 1) - base.narrow(1, 0, j + 1)).abs().max().item<float>();
    EXPECT_LE(same, kSame) << "prediction at or before byte " << j << " changed";
    if (j + 1 < T) {
      auto later = (out.narrow(1, j + 1, T - j - 1) - base.narrow(1, j + 1, T - j - 1)).abs().max().item<float>();
      EXPECT_GT(later, 0.0f) << "byte " << j << " influences nothing after it";
    }
  }
}

// start() + feed() with KV caches must reproduce the full forward pass, across patch boundaries.
TEST_P(Models, CachedDecodingMatchesFullForward) {
  torch::manual_seed(0);
  auto cfg = tiny(GetParam());
  auto model = make_model(cfg);
  model->to(torch::Device(bytelm::testing::test_device()));
  model->eval();
  torch::NoGradGuard no_grad;
  const int64_t B = 2, T = cfg.context;
  auto x = random_bytes(B, T, 3);
  auto full = model->forward(x);  // (B, T, 256)
  auto first = model->start(B);   // predicts byte 0
  EXPECT_LT((first - full.select(1, 0)).abs().max().item<float>(), kParity);
  // Feed in uneven chunks (1 byte, then 5, then the rest) to exercise multi-byte feeds.
  int64_t pos = 0;
  for (int64_t chunk : {int64_t(1), int64_t(5), T - 1 - 6}) {
    auto logits = model->feed(x.narrow(1, pos, chunk));  // predicts bytes pos+1 .. pos+chunk
    auto ref = full.narrow(1, pos + 1, chunk);
    EXPECT_LT((logits - ref).abs().max().item<float>(), kParity) << "chunk at " << pos;
    pos += chunk;
  }
  EXPECT_EQ(model->decoded(), T - 1);
  EXPECT_THROW(model->feed(x.narrow(1, 0, 1)), Error);  // past the context
  // A restart gives the same first prediction again.
  EXPECT_LT((model->start(B) - first).abs().max().item<float>(), 1e-6f);
}

TEST_P(Models, FlopsAccounting) {
  auto cfg = tiny(GetParam());
  auto model = make_model(cfg);
  int64_t total = 0;
  for (const auto& p : model->flops()) {
    EXPECT_GT(p.matmul_flops, 0);
    EXPECT_GT(p.attention_flops, 0);
    total += p.params;
  }
  EXPECT_EQ(total, model->num_params());
}

INSTANTIATE_TEST_SUITE_P(All, Models, ::testing::Values("transformer", "megabyte", "entropy", "hnet"));

TEST(Megabyte, GlobalModelRunsOncePerPatch) {
  // The paper's accounting: global matmul FLOPs per byte are the global model's divided by P.
  auto cfg = tiny("megabyte");
  auto model = make_model(cfg);
  auto parts = model->flops();
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_NEAR(parts[0].matmul_flops, stack_matmul_flops(cfg.global) / cfg.patch_size, 1e-6);
}

TEST(Hooks, EachModelSaysWhatItIs) {
  // The interface's answers that replaced tests of the model's name in the commands.
  for (const std::string name : {"transformer", "megabyte", "entropy", "blt", "bpe"}) {
    SCOPED_TRACE(name);
    auto cfg = tiny(name);
    auto model = make_model(cfg);
    EXPECT_EQ(model->reads_tokens(), name == "bpe");
    EXPECT_EQ(model->fixed_patch_size(), name == "megabyte" ? cfg.patch_size : 0);
    EXPECT_EQ(model->dynamic_patches(), name == "blt");
    EXPECT_EQ(std::isnan(model->counted_patch_size()), name != "blt");
    EXPECT_EQ(model->is_entropy_model(), name == "entropy");
    EXPECT_EQ(model->runs_entropy_model(), name == "blt" && cfg.patching.mode == "entropy");
    auto patcher = model->entropy_patcher();
    if (name == "entropy") {
      EXPECT_EQ(patcher.get(), model.get());
    } else if (name == "blt") {
      ASSERT_TRUE(patcher);
      EXPECT_TRUE(patcher->is_entropy_model());
    } else {
      EXPECT_FALSE(patcher);
    }
  }
}

TEST(Config, MinParamsIsALowerBoundForEveryPreset) {
  // The checkpoint loader refuses a config whose min_params() exceeds the weights file: it must never
  // exceed what the model really holds (else good checkpoints would be refused), and stay close enough to
  // catch a config edited to a far larger model.
  int checked = 0;
  for (const auto& p : list_presets()) {
    if (p.params > 50000000) continue;  // keep the test fast: the large presets share these shapes' code
    SCOPED_TRACE(p.name);
    const ModelConfig cfg = load_config(p.path, "");
    auto model = make_model(cfg);
    const double n = double(model->num_params());
    EXPECT_LE(cfg.min_params(), n);
    EXPECT_GE(cfg.min_params(), 0.3 * n);
    ++checked;
  }
  EXPECT_GT(checked, 10);
}

TEST(Hooks, FootprintAndFlopsFollowTheModel) {
  auto mb = make_model(load_config("mb_demo", ""));
  const auto& c = mb->config();
  EXPECT_DOUBLE_EQ(mb->activation_floats_per_byte(),
                   3.0 * 256 + c.global.layers * c.global.width * 16.0 / double(c.patch_size) +
                       c.local.layers * c.local.width * 16.0);
  auto tf = make_model(tiny("transformer"));
  EXPECT_THROW(tf->attach_entropy_model(*make_model(tiny("entropy"))), Error);
  EXPECT_THROW(tf->calibrate_patching(torch::zeros({1, 8}, torch::kLong), 4.0), Error);
  tf->set_bytes_per_position(3.0);  // byte models ignore it
  EXPECT_EQ(tf->bytes_per_position(), 1.0);
  EXPECT_DOUBLE_EQ(tf->forward_flops_per_position(), tf->forward_flops_per_byte());
  auto bpe = make_model(tiny("bpe"));
  bpe->set_bytes_per_position(2.0);
  const double per_token = bpe->forward_flops_per_position(), at_two = bpe->forward_flops_per_byte();
  bpe->set_bytes_per_position(4.0);
  EXPECT_DOUBLE_EQ(bpe->forward_flops_per_position(), per_token);  // per token: independent of the rate
  EXPECT_NEAR(bpe->forward_flops_per_byte(), at_two / 2, 1e-9 * at_two);
}

TEST(Config, RejectsInconsistentConfigs) {
  using nlohmann::json;
  json good = json::parse(R"({"model": "megabyte", "context": 64, "patch_size": 4,
    "global": {"layers": 1, "width": 64, "heads": 2}, "local": {"layers": 1, "width": 32, "heads": 2}})");
  EXPECT_NO_THROW(ModelConfig::from_json(good));
  auto expect_error = [](json j, const std::string& word) {
    try {
      ModelConfig::from_json(j);
      ADD_FAILURE() << "accepted: " << j.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
    }
  };
  json j = good;
  j["context"] = 66;
  expect_error(j, "multiple of patch_size");
  j = good;
  j["global"]["heads"] = 3;
  expect_error(j, "does not divide");
  j = good;
  j["local"]["heads"] = 5;
  expect_error(j, "does not divide");
  j = good;
  j["dropout"] = 0.1;
  expect_error(j, "unknown key 'dropout'");
  j = good;
  j["global"]["depth"] = 2;
  expect_error(j, "unknown key 'depth'");
  j = good;
  j["model"] = "rnn";
  expect_error(j, "unknown model");
  j = good;
  j["global"]["width"] = 66;
  expect_error(j, "multiple of patch_size");
  j = good;
  j.erase("local");
  expect_error(j, "local");
  j = good;
  j["context"] = "64";
  expect_error(j, "integer");
  EXPECT_THROW(load_config("no-such-preset", "megabyte"), Error);
  EXPECT_THROW(
      load_config("tiny", "transformer").model == "megabyte" ? throw Error("x") : load_config("mb_tiny", "transformer"),
      Error);
}

TEST(Config, PresetsLoad) {
  for (const char* name : {"mb_tiny", "mb_demo", "mb_cpu", "mb_s", "tf_tiny", "tf_demo", "tf_cpu", "tf_s", "ent_tiny",
                           "ent_demo", "ent_s", "blt_tiny", "blt_demo", "blt_s"}) {
    auto cfg = load_config(name, "");
    EXPECT_EQ(ModelConfig::from_json(cfg.to_json()).to_json(), cfg.to_json()) << name;
  }
}

// attention() (ATen's fused scaled_dot_product_attention) equals the plain masked softmax, values and
// gradients in float64: causal self-attention, queries at the end of a longer cache, and no mask; and a
// causal prefix is unaffected by what follows it.
TEST(Attention, FusedEqualsMathPath) {
  torch::manual_seed(4);
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  for (auto [Tq, Tk, causal] :
       {std::tuple<int64_t, int64_t, bool>{150, 150, true}, {7, 150, true}, {150, 150, false}}) {
    auto q = torch::randn({2, 3, Tq, 8}, opts).requires_grad_(), k = torch::randn({2, 3, Tk, 8}, opts).requires_grad_(),
         v = torch::randn({2, 3, Tk, 8}, opts).requires_grad_();
    auto dout = torch::randn({2, 3, Tq, 8}, opts);
    auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(8.0);
    if (causal) scores = scores.masked_fill(torch::ones({Tq, Tk}, torch::kBool).tril(Tk - Tq).logical_not(), -INFINITY);
    auto ref = torch::matmul(torch::softmax(scores, -1), v);
    auto ref_grads = torch::autograd::grad({ref}, {q, k, v}, {dout});
    auto out = attention(q, k, v, causal);
    auto grads = torch::autograd::grad({out}, {q, k, v}, {dout});
    EXPECT_LT((out - ref).abs().max().item<double>(), 1e-12) << Tq << " " << Tk;
    for (int i = 0; i < 3; ++i) EXPECT_LT((grads[i] - ref_grads[i]).abs().max().item<double>(), 1e-12) << i;
  }
  auto x = torch::randn({1, 2, 600, 8});
  auto full = attention(x, x, x, true);
  auto prefix = attention(x.narrow(2, 0, 300), x.narrow(2, 0, 300), x.narrow(2, 0, 300), true);
  EXPECT_LT((full.narrow(2, 0, 300) - prefix).abs().max().item<float>(), 1e-5f);
}

// Without autograd, rotary positions on the CPU run as one loop; it must give exactly the tensor ops' values
// (both pair layouts, one position as in decoding and several, from any start position).
TEST(Rotary, LoopEqualsTensorOpsBitForBit) {
  torch::manual_seed(6);
  for (bool interleaved : {false, true}) {
    Rotary rope(16, 10000.0, interleaved);
    for (int64_t T : {1, 7}) {
      const auto x = torch::randn({2, 3, T, 16});
      const auto with_grad = x.clone().requires_grad_();  // autograd: the tensor-op path
      const auto ref = rope.apply(with_grad, 5).detach();
      torch::NoGradGuard no_grad;
      const auto loop = rope.apply(x, 5);
      EXPECT_TRUE(torch::equal(loop, ref)) << "interleaved " << interleaved << " T " << T;
    }
  }
}
