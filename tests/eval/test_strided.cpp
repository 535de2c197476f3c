// test_strided.cpp — MEGABYTE's strided inference (eval --strided) against a slow reference written from
// the paper's description: pass A scores consecutive windows from byte 0, pass B consecutive windows from
// byte P/2; each byte's score comes from the pass in which it sits at the earlier position of its patch
// (or, keep_late, the later one).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "eval/evaluate.h"
#include "model/factory.h"
#include "model/model.h"
#include "util/error.h"

using namespace bytelm;

namespace {

LanguageModel tiny_megabyte(int64_t patch_size) {
  torch::manual_seed(1);
  auto cfg = ModelConfig::from_json(nlohmann::json{{"model", "megabyte"},
                                                   {"context", 64},
                                                   {"patch_size", patch_size},
                                                   {"init_std", 0.1},
                                                   {"global", {{"layers", 1}, {"width", 64}, {"heads", 2}}},
                                                   {"local", {{"layers", 1}, {"width", 32}, {"heads", 2}}}});
  auto model = make_model(cfg);
  model->eval();
  return model;
}

// -log p(data[t]) when the window [start, start + len) is scored (t inside it).
double nll_in_window(LanguageModelImpl& model, const std::vector<uint8_t>& data, int64_t start, int64_t len,
                     int64_t t) {
  torch::NoGradGuard no_grad;
  auto x = torch::empty({1, len}, torch::kLong);
  for (int64_t i = 0; i < len; ++i) x[0][i] = int64_t(data[size_t(start + i)]);
  auto logp = torch::log_softmax(model.forward(x).to(torch::kFloat64), -1);
  return -logp[0][t - start][int64_t(data[size_t(t)])].item<double>();
}

}  // namespace

TEST(Strided, MatchesTheSlowReference) {
  for (auto [P, late] : {std::pair<int64_t, bool>{8, false}, {4, false}, {8, true}}) {
    auto model = tiny_megabyte(P);
    const int64_t T = 64, n = 300, half = P / 2;
    std::vector<uint8_t> data(n);
    for (int64_t i = 0; i < n; ++i) data[size_t(i)] = uint8_t((i * 37 + i / 7) % 256);
    double ref = 0;
    for (int64_t t = 0; t < n; ++t) {
      const int64_t start_a = t / T * T, pos_a = (t - start_a) % P;
      const int64_t start_b = t < half ? -1 : half + (t - half) / T * T, pos_b = (t - start_b) % P;
      if (start_b >= 0 && (late ? pos_b > pos_a : pos_b < pos_a))
        ref += nll_in_window(*model, data, start_b, std::min(T, n - start_b), t);
      else
        ref += nll_in_window(*model, data, start_a, std::min(T, n - start_a), t);
    }
    const double got = score_bytes_strided(*model, data.data(), n, 0, 3, "cpu", false, late);
    EXPECT_NEAR(got, ref, 1e-6 * ref) << "P = " << P;
    // It differs from the basic score (it is a different estimate), at twice the cost.
    EXPECT_NE(got, score_bytes(*model, data.data(), n, 3, "cpu"));
  }
}

TEST(Strided, NeedsAPatchedMegabyte) {
  torch::manual_seed(1);
  auto tf = make_model(load_config("tiny", "transformer"));
  std::vector<uint8_t> data(100, 'a');
  EXPECT_THROW(score_bytes_strided(*tf, data.data(), 100, 0, 2, "cpu"), Error);
  auto mb = tiny_megabyte(8);
  EXPECT_THROW(score_bytes_strided(*mb, data.data(), 100, 65, 2, "cpu"), Error);  // stride past the context
  EXPECT_GT(score_bytes_strided(*mb, data.data(), 100, 16, 2, "cpu"), 0.0);       // with sliding windows
}
