// test_blt.cpp — BLT: shapes, causality, cached == uncached decoding (logits and greedy bytes) for each
// patching rule, the Hugging Face layout round trip, and errors for patchers that do not fit.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "generate/generate.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "model/blt.h"
#include "model/checkpoint.h"
#include "model/factory.h"
#include "util/error.h"

using namespace bytelm;
namespace fs = std::filesystem;

namespace {

torch::Tensor text_bytes(int64_t B, int64_t T, int64_t seed) {
  // Text-like bytes (letters and spaces) so the space rule has something to cut.
  torch::manual_seed(seed);
  auto letters = torch::randint(97, 105, {B, T}, torch::kLong);
  auto space = torch::rand({B, T}) < 0.2;
  return torch::where(space, torch::full({B, T}, 32, torch::kLong), letters);
}

// The tiny BLT with random weights. For entropy patching the threshold is set to the median entropy
// of `calib`, so that patches of varied lengths appear (a random entropy model is uniformly unsure).
std::shared_ptr<BltImpl> tiny_blt(const std::string& mode, const torch::Tensor& calib) {
  torch::manual_seed(7);
  auto model = std::dynamic_pointer_cast<BltImpl>(make_model(load_config("tiny", "blt")));
  model->eval();
  PatchingConfig p = model->config().patching;
  p.mode = mode;
  p.patch_size = 3;
  if (mode == "entropy") {
    auto ids = torch::cat({torch::full({calib.size(0), 1}, 1, torch::kLong), calib + 4}, 1);
    auto h = model->entropies(ids).flatten();
    p.threshold = std::get<0>(h.sort()).select(0, h.numel() / 2).item<double>();
  }
  model->set_patching(p);
  return model;
}

class Blt : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(Blt, ShapesAndPatches) {
  auto x = text_bytes(2, 64, 1);
  auto model = tiny_blt(GetParam(), x);
  torch::NoGradGuard no_grad;
  auto logits = model->forward(x);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 64, 260}));
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
  double mean = model->measure_patch_size(x);
  if (GetParam() == "byte")
    EXPECT_NEAR(mean, 1.0, 1e-9);
  else
    EXPECT_GT(mean, 1.2) << GetParam();
}

TEST_P(Blt, Causality) {
  auto x = text_bytes(1, 64, 2);
  auto model = tiny_blt(GetParam(), x);
  torch::NoGradGuard no_grad;
  auto base = model->forward(x);
  for (int64_t j : {0, 1, 2, 7, 30, 63}) {
    auto y = x.clone();
    y[0][j] = y[0][j].item<int64_t>() == 32 ? 97 : 32;  // flip a letter/space: also moves patch boundaries
    auto out = model->forward(y);
    // Not bit-exact: a moved boundary changes the number of patches and so the shapes the matmuls
    // see, which changes float rounding (~1e-8); a causal leak would show at ~1e-2.
    EXPECT_LT((out.narrow(1, 0, j + 1) - base.narrow(1, 0, j + 1)).abs().max().item<float>(), 1e-6f)
        << "prediction at or before byte " << j << " changed";
    if (j < 60)
      EXPECT_GT((out.narrow(1, j + 1, 63 - j) - base.narrow(1, j + 1, 63 - j)).abs().max().item<float>(), 1e-4f)
          << "byte " << j << " influences nothing after it";
  }
}

// Cached decoding (entropy model, encoder, global and decoder caches, online boundaries) reproduces the
// full recomputation: logits within 1e-4 and identical greedy bytes, for one row and for a batch.
TEST_P(Blt, CachedMatchesUncached) {
  auto x = text_bytes(1, 64, 3);
  auto model = tiny_blt(GetParam(), x);
  torch::NoGradGuard no_grad;
  auto full = model->forward(x);  // (1, 64, 260)
  auto first = model->start(1);
  EXPECT_LT((first - full.select(1, 0)).abs().max().item<float>(), 1e-4f);
  auto cached = model->feed(x.narrow(1, 0, 63));
  EXPECT_LT((cached - full.narrow(1, 1, 63)).abs().max().item<float>(), 1e-4f);
  // A batch of rows with different bytes (so different patches) decodes each row as the full pass does.
  auto xs = text_bytes(3, 64, 4);
  auto full_rows = model->forward(xs);  // (3, 64, 260)
  auto first_rows = model->start(3);
  auto cached_rows = torch::cat({first_rows.unsqueeze(1), model->feed(xs.narrow(1, 0, 63))}, 1);
  EXPECT_LT((cached_rows - full_rows).abs().max().item<float>(), 1e-4f);
  EXPECT_THROW(model->feed(xs.narrow(0, 0, 2).narrow(1, 0, 1)), Error);  // 2 rows after start(3)

  GenerateOptions g;
  g.prompt = "abc d";
  g.max_bytes = 50;
  g.temperature = 0;
  std::string a = generate(*model, g, [](uint8_t) {});
  g.no_cache = true;
  std::string b = generate(*model, g, [](uint8_t) {});
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.size(), 50u);
}

INSTANTIATE_TEST_SUITE_P(Rules, Blt, ::testing::Values("entropy", "static", "space", "byte"));

// The evaluation ablations of the global model: skipping it equals a global model whose blocks add nothing
// (output projections zeroed: each residual block is then the identity, and it has no final norm); zeroing
// it makes the logits independent of every global weight, the input projection included.
TEST(BltGlobalAblation, SkipIsAnIdentityGlobalModelAndZeroIgnoresIt) {
  auto x = text_bytes(2, 64, 11);
  auto model = tiny_blt("space", x);
  torch::NoGradGuard no_grad;
  model->set_global_ablation(BltImpl::GlobalAblation::kSkip);
  const auto skipped = model->forward(x);
  model->set_global_ablation(BltImpl::GlobalAblation::kZero);
  const auto zeroed = model->forward(x);
  model->set_global_ablation(BltImpl::GlobalAblation::kNone);
  const auto intact = model->forward(x);
  EXPECT_GT((intact - skipped).abs().max().item<double>(), 1e-4);
  EXPECT_GT((skipped - zeroed).abs().max().item<double>(), 1e-4);
  for (auto& p : model->model->global_transformer->named_parameters()) {
    const bool output = p.key().find("o_proj") != std::string::npos || p.key().find("down_proj") != std::string::npos;
    if (output) p.value().zero_();
  }
  EXPECT_TRUE(torch::allclose(model->forward(x), skipped, 1e-5, 1e-6));
  for (auto& p : model->model->global_transformer->parameters()) p.add_(torch::randn_like(p));
  model->set_global_ablation(BltImpl::GlobalAblation::kZero);
  EXPECT_TRUE(torch::equal(model->forward(x), zeroed));
}

TEST(BltLayout, HuggingFaceRoundTrip) {
  auto dir = (fs::temp_directory_path() / ("bytelm_blt_" + std::to_string(getpid()))).string();
  fs::remove_all(dir);
  auto x = text_bytes(1, 64, 4);
  auto model = tiny_blt("entropy", x);
  save_model(dir, *model);
  // config.json in the BltConfig layout, tensors under HF's names.
  auto cfg = nlohmann::json::parse(read_file(dir + "/config.json"));
  EXPECT_EQ(cfg["model_type"], "blt");
  EXPECT_EQ(cfg["encoder_config"]["hidden_size"], 32);
  EXPECT_EQ(cfg["patcher_config"]["num_hidden_layers"], 1);
  EXPECT_EQ(cfg["encoder_hash_byte_group_size"], nlohmann::json::array({3, 4}));
  EXPECT_DOUBLE_EQ(cfg["patching_threshold"].get<double>(), model->config().patching.threshold);
  SafetensorsReader st(dir + "/model.safetensors");
  for (const char* name :
       {"lm_head.weight", "model.encoder_hash_tok_embedding.weight", "model.local_encoder.embed_tokens.weight",
        "model.local_encoder.layers.0.self_attn.q_proj.weight", "model.local_encoder.cross_attn_layers.0.q_norm.weight",
        "model.local_encoder.patch_embedding_projection.weight",
        "model.global_transformer.layers.1.mlp.down_proj.weight",
        "model.local_decoder.cross_attn_layers.1.k_proj.weight", "model.local_decoder.norm.weight",
        "model.local_decoder.patch_embedding_projection.weight", "model.patcher.embed_tokens.weight",
        "model.patcher.norm.weight", "model.patcher.lm_head.weight"})
    EXPECT_TRUE(st.has(name)) << name;
  EXPECT_EQ(st.info("model.encoder_hash_tok_embedding.weight").shape, (std::vector<int64_t>{2 * 97, 32}));
  EXPECT_EQ(st.info("model.local_decoder.patch_embedding_projection.weight").shape, (std::vector<int64_t>{64, 64}));
  auto loaded = load_model(dir);
  loaded->eval();
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(model->forward(x), loaded->forward(x)));

  // A checkpoint whose config has a patcher but whose weights do not: rejected, naming the patcher.
  NamedTensors without;
  for (const auto& p : named_parameters_of(*model))
    if (p.first.find("patcher") == std::string::npos) without.push_back(p);
  save_tensors(dir + "/model.safetensors", without);
  try {
    load_model(dir);
    ADD_FAILURE() << "loaded a BLT checkpoint without its patcher";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("patcher"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(BltLayout, EntropyModelMustFit) {
  torch::manual_seed(1);
  auto blt = std::dynamic_pointer_cast<BltImpl>(make_model(load_config("tiny", "blt")));
  auto fits = make_model(load_config("tiny", "entropy"));
  EXPECT_NO_THROW(load_patcher(*blt, *fits));
  // The patcher now holds the entropy model's weights.
  EXPECT_TRUE(torch::equal(blt->model->patcher->lm_head->weight, fits->named_parameters()["patcher.lm_head.weight"]));
  EXPECT_THROW(load_patcher(*blt, *make_model(load_config("demo", "entropy"))), Error);      // widths
  EXPECT_THROW(load_patcher(*blt, *make_model(load_config("tiny", "transformer"))), Error);  // 256-value vocab
}

TEST(BltConfig, RejectsBadPatching) {
  auto cfg = load_config("tiny", "blt").to_json();
  auto bad = [&](const char* key, nlohmann::json value) {
    auto j = cfg;
    j[key] = value;
    EXPECT_THROW(ModelConfig::from_json(j), Error) << key;
  };
  bad("patching_mode", "bpe");
  bad("patch_size", 0);
  bad("max_patch_length", -1);
  bad("cross_attn_k", 0);
  bad("encoder_hash_byte_group_size", nlohmann::json::array());
  auto j = cfg;
  j.erase("patcher_config");
  EXPECT_THROW(ModelConfig::from_json(j), Error);  // entropy patching without a patcher
  j["patching_mode"] = "static";
  EXPECT_NO_THROW(ModelConfig::from_json(j));
  j = cfg;
  j["decoder_config"]["hidden_size"] = 64;
  EXPECT_THROW(ModelConfig::from_json(j), Error);  // the decoder reads the encoder's states
}

// The grouped cross-attention used by BLT's full forward equals dense cross-attention with a mask.
TEST(CrossAttention, GroupedEqualsMasked) {
  torch::manual_seed(3);
  CrossAttention cross(32, 4, 1e-5);
  const int64_t B = 2, Q = 7, S = 11, G = 3;
  auto x = torch::randn({B, Q, 32}), kv = torch::randn({B, S, 32});
  auto index = torch::randint(0, S, {B, Q, G}, torch::kLong);
  auto valid = torch::rand({B, Q, G}) < 0.7;
  valid.select(2, 0).fill_(true);
  index.select(2, 1).copy_((index.select(2, 0) + 1) % S);  // distinct keys in a group, as in BLT
  index.select(2, 2).copy_((index.select(2, 0) + 2) % S);
  auto keep = torch::zeros({B, Q, S}, torch::kBool);
  keep.scatter_(2, index, valid);
  auto mask =
      torch::zeros({B, 1, Q, S}).masked_fill_(keep.unsqueeze(1).logical_not(), std::numeric_limits<float>::lowest());
  torch::NoGradGuard no_grad;
  auto dense = cross->forward(x, kv, mask), grouped = cross->forward_grouped(x, kv, index, valid);
  EXPECT_LT((dense - grouped).abs().max().item<float>(), 1e-5f);
}
