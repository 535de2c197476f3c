// test_hnet.cpp — H-Net: routing, the ratio loss and the straight-through estimator against hand-computed
// values, smoothing, cached decoding of one and two stages against the full forward (and generation through
// the sliding window), learned chunk starts, per-stage learning rates, the chunk ratio tracking its target on
// a tiny corpus, the collapse guard and config errors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>

#include <nlohmann/json.hpp>

#include "common/test_device.h"
#include "generate/generate.h"
#include "model/factory.h"
#include "model/hnet.h"
#include "optim/adamw.h"
#include "util/error.h"

using namespace bytelm;

namespace {

ModelConfig two_stage_tiny() {
  return ModelConfig::from_json(nlohmann::json::parse(R"({"model": "hnet", "context": 64,
    "stages": [{"encoder": {"layers": 1, "width": 32, "heads": 2}, "decoder": {"layers": 1, "width": 32, "heads": 2},
                "target_ratio": 2},
               {"encoder": {"layers": 1, "width": 48, "heads": 2}, "decoder": {"layers": 1, "width": 48, "heads": 2},
                "target_ratio": 2}],
    "main": {"layers": 1, "width": 64, "heads": 2}})"));
}

std::shared_ptr<HnetImpl> make_hnet(const ModelConfig& cfg, uint64_t seed) {
  torch::manual_seed(seed);
  auto model = std::dynamic_pointer_cast<HnetImpl>(make_model(cfg));
  model->eval();
  return model;
}

torch::Tensor text_bytes(const std::string& s, int64_t rows) {
  auto t = torch::from_blob(const_cast<char*>(s.data()), {1, int64_t(s.size())}, torch::kUInt8).to(torch::kLong);
  return t.repeat({rows, 1});
}

}  // namespace

TEST(Hnet, RoutingIsOneMinusCosineOverTwo) {
  auto model = make_hnet(load_config("tiny", "hnet"), 0);  // q, k start as the identity
  const int64_t D = model->config().stages[0].encoder.width;
  auto x = torch::zeros({1, 4, D});
  x[0][0][0] = 1;
  x[0][1][0] = 2;   // same direction as before: cos 1 -> p 0
  x[0][2][1] = 1;   // orthogonal: cos 0 -> p 0.5, a tie: no boundary (the reference's argmax)
  x[0][3][1] = -3;  // opposite: cos -1 -> p 1
  torch::NoGradGuard no_grad;
  Routing r = model->route(0, x, torch::Tensor());
  auto p = r.p[0];
  EXPECT_FLOAT_EQ(p[0].item<float>(), 1.0f);  // a sequence starts a chunk
  EXPECT_NEAR(p[1].item<float>(), 0.0, 1e-6);
  EXPECT_NEAR(p[2].item<float>(), 0.5, 1e-6);
  EXPECT_NEAR(p[3].item<float>(), 1.0, 1e-6);
  const std::vector<bool> expected{true, false, false, true};
  for (int64_t t = 0; t < 4; ++t) EXPECT_EQ(r.boundary[0][t].item<bool>(), expected[size_t(t)]) << t;
}

TEST(Hnet, RatioLossMatchesHandComputedValueAndGradient) {
  // N = 4, F = 0.5, G = 0.3: 4/3 (3 * 0.5 * 0.3 + 0.5 * 0.7) = 16/15; dL/dG = 4/3 (3 F - (1 - F)) = 4/3.
  auto F_ = torch::tensor(0.5, torch::requires_grad());
  auto G = torch::tensor(0.3, torch::requires_grad());
  auto loss = HnetImpl::ratio_loss(F_, G, 4.0);
  EXPECT_NEAR(loss.item<double>(), 16.0 / 15.0, 1e-6);
  loss.backward();
  EXPECT_NEAR(G.grad().item<double>(), 4.0 / 3.0, 1e-6);
  EXPECT_FALSE(F_.grad().defined() && F_.grad().abs().item<double>() > 0);  // F carries no gradient
  // Its minimum, 1, is at F = G = 1/N.
  EXPECT_NEAR(HnetImpl::ratio_loss(torch::tensor(0.25), torch::tensor(0.25), 4.0).item<double>(), 1.0, 1e-6);
}

TEST(Hnet, StraightThroughEstimatorIsOneForwardAndPassesTheGradient) {
  auto p = torch::tensor({0.9f, 0.2f, 0.7f}, torch::requires_grad());
  auto boundary = torch::tensor({true, false, true});
  auto ste = HnetImpl::straight_through(p, boundary);
  EXPECT_TRUE(torch::equal(ste.detach(), torch::ones({3})));
  ste.sum().backward();
  // c = p at a boundary, 1 - p elsewhere: dc/dp = +1, -1.
  EXPECT_TRUE(torch::allclose(p.grad(), torch::tensor({1.0f, -1.0f, 1.0f})));
}

TEST(Hnet, SmoothingIsTheChunkEma) {
  auto z = torch::tensor({1.0f, 10.0f, 100.0f}).view({1, 3, 1});
  auto P = torch::tensor({0.5f, 0.25f, 1.0f}).view({1, 3});
  auto out = HnetImpl::smooth(z, P).view({3});
  EXPECT_FLOAT_EQ(out[0].item<float>(), 0.5f);                       // 0.5 * 1
  EXPECT_FLOAT_EQ(out[1].item<float>(), 0.25f * 10 + 0.75f * 0.5f);  // 2.875
  EXPECT_FLOAT_EQ(out[2].item<float>(), 100.0f);
}

TEST(Hnet, TwoStagesCachedDecodingMatchesFullForward) {
  auto model = make_hnet(two_stage_tiny(), 3);
  torch::NoGradGuard no_grad;
  const int64_t B = 3, T = 64;
  torch::manual_seed(4);
  auto x = torch::randint(0, 256, {B, T}, torch::kLong);
  auto full = model->forward(x);  // (B, T, 256)
  EXPECT_LT((model->start(B) - full.select(1, 0)).abs().max().item<float>(), 1e-5f);
  int64_t pos = 0;
  for (int64_t n : {int64_t(1), int64_t(1), int64_t(7), int64_t(20), T - 1 - 29}) {
    auto logits = model->feed(x.narrow(1, pos, n));
    EXPECT_LT((logits - full.narrow(1, pos + 1, n)).abs().max().item<float>(), 1e-5f) << "at " << pos;
    pos += n;
  }
  // Both stages really cut: the inner stage saw fewer positions than the outer one, the main network fewer still.
  model->count_patches_of(x);
  EXPECT_GT(model->stage_ratios()[0], 1.0);
  EXPECT_GT(model->stage_ratios()[1], 1.0);
}

TEST(Hnet, CachedGenerationEqualsUncachedPastTheContext) {
  for (const auto& cfg : {load_config("tiny", "hnet"), two_stage_tiny()}) {
    auto model = make_hnet(cfg, 5);
    GenerateOptions o;
    o.precision = "fp32";
    o.prompt = "H-Net ";
    o.max_bytes = 90;  // past the context of 64: the window slides
    for (double temperature : {0.0, 0.8}) {
      o.temperature = temperature;
      o.seed = 7;
      o.no_cache = false;
      const std::string cached = generate(*model, o, [](uint8_t) {});
      o.no_cache = true;
      EXPECT_EQ(generate(*model, o, [](uint8_t) {}), cached) << "temperature " << temperature;
    }
  }
}

TEST(Hnet, ChunkStartsAreTheBoundaries) {
  auto model = make_hnet(two_stage_tiny(), 6);
  auto x = text_bytes("the cat sat on the mat, and the dog sat on the log.", 1);
  auto starts = model->chunk_starts(x);
  ASSERT_EQ(starts.size(), 2u);
  model->count_patches_of(x);
  const double T = double(x.size(1));
  EXPECT_EQ(starts[0].front(), 0);
  EXPECT_NEAR(double(starts[0].size()), T / model->stage_ratios()[0], 1.0);  // the start id and byte 0 share 0
  for (size_t s = 0; s < 2; ++s)
    for (size_t i = 1; i < starts[s].size(); ++i) EXPECT_LT(starts[s][i - 1], starts[s][i]);
  for (int64_t b : starts[1])  // the inner stage's starts are outer starts
    EXPECT_TRUE(std::find(starts[0].begin(), starts[0].end(), b) != starts[0].end()) << b;
}

TEST(Hnet, PerStageLearningRates) {
  auto model = make_hnet(two_stage_tiny(), 0);
  EXPECT_DOUBLE_EQ(model->lr_multiplier("embed.weight"), 2.0);  // the paper's heuristic, outer stage first
  EXPECT_DOUBLE_EQ(model->lr_multiplier("head.weight"), 2.0);
  EXPECT_DOUBLE_EQ(model->lr_multiplier("stages.0.encoder.layers.0.mlp.up_proj.weight"), 2.0);
  EXPECT_DOUBLE_EQ(model->lr_multiplier("stages.1.q_proj.weight"), 1.5);
  EXPECT_DOUBLE_EQ(model->lr_multiplier("main.norm.weight"), 1.0);
  // AdamW applies them: a parameter at multiplier 2 moves twice as far on the first step (|update| = lr).
  auto a = torch::zeros({2}, torch::requires_grad()), b = torch::zeros({2}, torch::requires_grad());
  AdamW opt({{"a", a}, {"b", b}}, AdamWOptions{}, {1.0, 2.0});
  a.mutable_grad() = torch::ones({2});
  b.mutable_grad() = torch::ones({2});
  opt.step(0.01);
  EXPECT_NEAR(a[0].item<double>(), -0.01, 1e-6);
  EXPECT_NEAR(b[0].item<double>(), -0.02, 1e-6);
}

TEST(Hnet, ChunkRatioTracksItsTargetOnATinyCorpus) {
  // One stage aiming at 4 positions per chunk; identity-initialised routing starts near 2. The ratio loss
  // (weight raised to make it quick) must bring the realised ratio to the target within a few hundred steps.
  auto cfg = load_config("tiny", "hnet");
  cfg.ratio_loss_weight = 0.5;
  torch::manual_seed(1);
  auto model = std::dynamic_pointer_cast<HnetImpl>(make_model(cfg));
  model->train();
  const std::string text =
      "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want "
      "of a wife. However little known the feelings or views of such a man may be on his first entering a "
      "neighbourhood, this truth is so well fixed in the minds of the surrounding families.";
  auto corpus = text_bytes(text, 1).view({-1});
  NamedTensors params;
  std::vector<double> scales;
  for (const auto& p : model->named_parameters()) {
    params.emplace_back(p.key(), p.value());
    scales.push_back(model->lr_multiplier(p.key()));
  }
  AdamW opt(params, AdamWOptions{}, scales);
  const int64_t T = cfg.context, B = 8;
  const double initial = model->count_patches_of(corpus.narrow(0, 0, T).view({1, T}));
  for (int64_t step = 0; step < 200; ++step) {
    std::vector<torch::Tensor> rows;
    for (int64_t b = 0; b < B; ++b) rows.push_back(corpus.narrow(0, (step * 13 + b * 29) % (corpus.size(0) - T), T));
    auto x = torch::stack(rows);
    auto next_byte = byte_loss(model->forward(x), x);
    (next_byte + model->auxiliary_loss()).backward();
    opt.clip_step_and_clear(3e-3, 1.0);
  }
  const double ratio = model->take_training_patches();  // over all 200 steps
  const double final_ratio = model->count_patches_of(corpus.narrow(0, 0, T * 4).view({4, T}));
  std::printf("positions per chunk: %.2f at init, %.2f over training, %.2f after (target 4)\n", initial, ratio,
              final_ratio);
  EXPECT_LT(initial, 3.0);
  EXPECT_GT(ratio, initial);
  EXPECT_NEAR(final_ratio, 4.0, 1.2) << "initial " << initial << ", mean over training " << ratio;
  EXPECT_EQ(model->patching_warning(), "");
}

TEST(Hnet, CollapseGuardWarns) {
  auto model = make_hnet(load_config("tiny", "hnet"), 0);
  // Identical bytes give identical encoder outputs: cos 1, p 0, no boundary but the first.
  auto same = torch::full({2, 64}, int64_t('a'), torch::kLong);
  model->count_patches_of(same);
  EXPECT_NE(model->patching_warning().find("collapsed"), std::string::npos);
}

TEST(Hnet, ConfigErrorsNameTheKey) {
  using nlohmann::json;
  const json good = load_config("tiny", "hnet").to_json();
  EXPECT_NO_THROW(ModelConfig::from_json(good));
  EXPECT_EQ(ModelConfig::from_json(good).to_json(), good);
  auto expect_error = [](json j, const std::string& word) {
    try {
      ModelConfig::from_json(j);
      ADD_FAILURE() << "accepted: " << j.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
    }
  };
  json j = good;
  j["main"]["width"] = 16;
  expect_error(j, "main.width");
  j = good;
  j["stages"][0]["target_ratio"] = 1.0;
  expect_error(j, "target_ratio");
  j = good;
  j["stages"][0]["decoder"]["width"] = 48;
  expect_error(j, "decoder.width");
  j = good;
  j["stages"][0]["extra"] = 1;
  expect_error(j, "extra");
  j = good;
  j["stages"] = json::array();
  expect_error(j, "stages");
}
