// test_megabyte_variants.cpp — MEGABYTE's config variants (conv patch encoder, cross-patch attention, a
// three-level hierarchy, and all together): config round trip and errors, causality of the full forward
// pass, cached decoding (start + feed) against the full forward pass for batched rows, and generation with
// KV caches against the no-cache reference (greedy and sampled, batch 1 and batched rows).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "generate/generate.h"
#include "model/factory.h"
#include "model/megabyte.h"
#include "model/model.h"
#include "util/error.h"

using namespace bytelm;
using nlohmann::json;

namespace {

// context 64, P = 8 (16 for three levels); init_std 0.1 so outputs depend clearly on their inputs.
json base_config() {
  return json::parse(R"({"model": "megabyte", "context": 64, "patch_size": 8, "init_std": 0.1,
    "global": {"layers": 2, "width": 64, "heads": 2}, "local": {"layers": 2, "width": 32, "heads": 2}})");
}

json variant(const std::string& name) {
  json j = base_config();
  if (name == "conv" || name == "conv_xpatch" || name == "all") j["conv_kernels"] = {3, 5, 7};
  if (name == "xpatch" || name == "conv_xpatch") j["cross_patch"] = 4;
  if (name == "3level" || name == "all") {
    j["patch_size"] = 16;  // global over 16-byte patches (D_G = 4), a middle level over 4-byte units, local bytes
    j["levels"] = json::parse(R"([{"patch_size": 4, "layers": 1, "width": 32, "heads": 2}])");
  }
  if (name == "all") j["cross_patch"] = 2;
  return j;
}

LanguageModel make(const std::string& name) {
  torch::manual_seed(4);
  auto model = make_model(ModelConfig::from_json(variant(name)));
  model->eval();
  return model;
}

torch::Tensor random_bytes(int64_t B, int64_t T, int64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, 256, {B, T}, torch::kLong);
}

class Variants : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(Variants, ConfigRoundTripsAndRecordsTheVariant) {
  const auto cfg = ModelConfig::from_json(variant(GetParam()));
  const json j = cfg.to_json();
  EXPECT_EQ(ModelConfig::from_json(j).to_json(), j);
  EXPECT_EQ(j.contains("conv_kernels"), GetParam() != "base");
  auto model = make_model(cfg);
  int64_t total = 0;
  for (const auto& p : model->flops()) {
    EXPECT_GT(p.matmul_flops, 0) << p.name;
    EXPECT_GT(p.attention_flops, 0) << p.name;
    total += p.params;
  }
  EXPECT_EQ(total, model->num_params());
}

// Changing byte j must not change the prediction of any byte at or before j, and must change a later one.
TEST_P(Variants, Causality) {
  auto model = make(GetParam());
  torch::NoGradGuard no_grad;
  const int64_t T = 64;
  auto x = random_bytes(2, T, 2);
  auto base = model->forward(x);
  for (int64_t j : {0, 1, 3, 4, 7, 8, 15, 16, 17, 40, 62, 63}) {
    auto y = x.clone();
    y[1][j] = (y[1][j].item<int64_t>() + 97) % 256;
    auto out = model->forward(y);
    EXPECT_LE((out.narrow(1, 0, j + 1) - base.narrow(1, 0, j + 1)).abs().max().item<float>(), 1e-6f)
        << GetParam() << ": prediction at or before byte " << j << " changed";
    EXPECT_EQ((out[0] - base[0]).abs().max().item<float>(), 0.0f) << "row 0 changed with row 1";
    if (j + 1 < T)
      EXPECT_GT((out.narrow(1, j + 1, T - j - 1) - base.narrow(1, j + 1, T - j - 1)).abs().max().item<float>(), 1e-4f)
          << GetParam() << ": byte " << j << " influences nothing after it";
  }
}

// start() + feed() (KV caches at every level, the borrowed keys of cross-patch attention, the conv window)
// reproduce the full forward pass for three rows, fed in uneven chunks across patch boundaries.
TEST_P(Variants, CachedDecodingMatchesFullForward) {
  auto model = make(GetParam());
  torch::NoGradGuard no_grad;
  const int64_t B = 3, T = 64;
  auto x = random_bytes(B, T, 3);
  auto full = model->forward(x);  // (B, T, 256)
  EXPECT_LT((model->start(B) - full.select(1, 0)).abs().max().item<float>(), 1e-4f);
  int64_t pos = 0;
  for (int64_t chunk : {1, 5, 11, 17, 29}) {
    auto logits = model->feed(x.narrow(1, pos, chunk));  // predicts bytes pos+1 .. pos+chunk
    EXPECT_LT((logits - full.narrow(1, pos + 1, chunk)).abs().max().item<float>(), 1e-4f)
        << GetParam() << ": chunk at " << pos;
    pos += chunk;
  }
  EXPECT_EQ(model->decoded(), T - 1);
  EXPECT_THROW(model->feed(x.narrow(1, 0, 1)), Error);
  // Batch 1 after batch 3 (the state is reallocated) still matches.
  EXPECT_LT((model->start(1) - full.select(1, 0).narrow(0, 2, 1)).abs().max().item<float>(), 1e-4f);
  auto one = model->feed(x.narrow(0, 2, 1).narrow(1, 0, T - 1));
  EXPECT_LT((one - full.narrow(0, 2, 1).narrow(1, 1, T - 1)).abs().max().item<float>(), 1e-4f);
}

// Generation with caches equals generation recomputing the full forward pass for every byte, greedy and
// sampled with a fixed seed, one prompt at a time and batched; 90 bytes slide the 64-byte window.
TEST_P(Variants, CachedGenerationEqualsNoCache) {
  auto model = make(GetParam());
  const std::vector<std::string> prompts{"", "The whale", "a longer prompt of 30 bytes...", "x"};
  GenerateOptions o;
  o.precision = "fp32";
  o.max_bytes = 90;
  o.seed = 7;
  for (double temperature : {0.0, 1.0}) {
    o.temperature = temperature;
    o.no_cache = true;
    auto reference = generate_batch(*model, prompts, o);  // no cache: each prompt alone, seed + i
    o.no_cache = false;
    // Greedy through rows at their own positions; sampled at one shared position, the cached path of
    // generate(): rows round differently (1e-7), which can flip a sampled byte whose draw lands on a boundary
    // (the rows' sampled bytes are checked against generate() in test_batch_decoder and test_rows).
    o.row_positions = temperature == 0.0;
    auto batched = generate_batch(*model, prompts, o);
    for (size_t i = 0; i < prompts.size(); ++i) {
      EXPECT_EQ(batched[i], reference[i]) << GetParam() << " batched row " << i << " temperature " << temperature;
      GenerateOptions one = o;
      one.prompt = prompts[i];
      one.seed = o.seed + i;
      EXPECT_EQ(generate(*model, one, [](uint8_t) {}), reference[i]) << GetParam() << " batch 1, prompt " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, Variants, ::testing::Values("base", "conv", "xpatch", "conv_xpatch", "3level", "all"));

TEST(VariantConfig, OldConfigsLoadUnchangedAndDefaultsAreOff) {
  const auto cfg = ModelConfig::from_json(base_config());
  EXPECT_FALSE(cfg.megabyte_variant());
  const json j = cfg.to_json();
  EXPECT_FALSE(j.contains("conv_kernels") || j.contains("cross_patch") || j.contains("levels"));
  auto model = make_model(cfg);
  EXPECT_TRUE(model->has_static_step(1));
  EXPECT_FALSE(make_model(ModelConfig::from_json(variant("xpatch")))->has_static_step(1));
}

TEST(VariantConfig, RejectsBadValues) {
  auto bad = [](const std::function<void(json&)>& edit) {
    json j = variant("all");
    edit(j);
    EXPECT_THROW(ModelConfig::from_json(j), Error) << j.dump();
  };
  bad([](json& j) { j["conv_kernels"] = {3, 0}; });
  bad([](json& j) { j["conv_kernels"] = "3,5,7"; });
  bad([](json& j) { j["cross_patch"] = 5; });  // more than the local group (4 bytes)
  bad([](json& j) { j["cross_patch"] = -1; });
  bad([](json& j) { j["levels"][0]["patch_size"] = 3; });   // does not divide 16
  bad([](json& j) { j["levels"][0]["patch_size"] = 16; });  // not smaller than the patch
  bad([](json& j) { j["levels"][0]["width"] = 30; });       // not a multiple of 4
  bad([](json& j) { j["levels"][0]["colour"] = 1; });       // unknown key
  bad([](json& j) { j["levels"] = json::object(); });
}
