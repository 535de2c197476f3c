// test_decode_weights.cpp — `--decode-weights bf16`: the bf16 matrix-vector kernel against LibTorch's fp32
// product of the same bf16-rounded weights (odd sizes, every row remainder), project() under the scope, and
// cached generation of every model: bf16 decoding of a model whose weights are already bf16 values must give
// exactly the bytes of fp32 decoding (greedy and sampled), with copies made of the weights it multiplied.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/test_device.h"
#include "generate/generate.h"
#include "model/blocks.h"
#include "model/decode_weights.h"
#include "model/model.h"
#include "util/bf16_gemv.h"
#include "util/error.h"

using namespace bytelm;

namespace {

torch::Tensor rounded(const torch::Tensor& w) { return w.to(torch::kBFloat16).to(torch::kFloat32); }

}  // namespace

TEST(Bf16Gemv, MatchesFp32ProductOfRoundedWeights) {
  torch::manual_seed(3);
  for (int64_t rows : {1, 3, 4, 5, 9, 64}) {
    for (int64_t n : {1, 7, 8, 15, 16, 17, 33, 100, 384}) {
      const torch::Tensor w = torch::randn({rows, n});
      const torch::Tensor x = torch::randn({n});
      const torch::Tensor wb = w.to(torch::kBFloat16).contiguous();
      const auto* wp = reinterpret_cast<const uint16_t*>(wb.data_ptr<at::BFloat16>());
      const torch::Tensor ref = torch::mv(rounded(w), x);
      torch::Tensor y = torch::full({rows}, std::nanf(""));
      bf16_gemv_rows(wp, x.data_ptr<float>(), y.data_ptr<float>(), 0, rows, n);
      EXPECT_TRUE(torch::allclose(y, ref, 1e-5, 1e-5)) << bf16_gemv_kernel() << " rows " << rows << " n " << n;
      for (const char* k : {"avx512", "avx2", "portable"}) {  // every kernel this CPU can run
        torch::Tensor yk = torch::full({rows}, std::nanf(""));
        if (!bf16_gemv_rows_using(k, wp, x.data_ptr<float>(), yk.data_ptr<float>(), 0, rows, n)) continue;
        EXPECT_TRUE(torch::allclose(yk, ref, 1e-5, 1e-5)) << k << " rows " << rows << " n " << n;
      }
    }
  }
}

TEST(Bf16Decoding, ProjectUsesTheCopyOnlyInsideTheScope) {
  torch::manual_seed(4);
  torch::nn::Linear layer(torch::nn::LinearOptions(40, 24).bias(false));
  const torch::Tensor x = torch::randn({1, 1, 40});
  torch::NoGradGuard no_grad;
  const torch::Tensor fp32 = project(layer, x);
  EXPECT_TRUE(torch::allclose(fp32, layer->forward(x), 1e-5, 1e-5));
  {
    Bf16Decoding scope(true);
    const torch::Tensor bf16 = project(layer, x);
    EXPECT_EQ(scope.copies(), 1u);
    EXPECT_EQ(bf16.sizes(), fp32.sizes());
    EXPECT_TRUE(torch::allclose(bf16, torch::matmul(x, rounded(layer->weight).t()), 1e-5, 1e-5));
    EXPECT_FALSE(torch::equal(bf16, fp32));  // the weights were rounded
    layer->weight.mul_(2);                   // changed in place: copied again
    EXPECT_TRUE(torch::allclose(project(layer, x), torch::matmul(x, rounded(layer->weight).t()), 1e-5, 1e-5));
    {
      Bf16Decoding off(false);  // an inner disabled scope turns it off
      EXPECT_TRUE(torch::allclose(project(layer, x), torch::mv(layer->weight, x.reshape({-1})).view({1, 1, 24})));
    }
    const torch::Tensor rows = torch::randn({3, 40});  // several rows: the fp32 path
    EXPECT_TRUE(torch::allclose(project(layer, rows), layer->forward(rows)));
  }
  EXPECT_TRUE(torch::equal(project(layer, x), torch::mv(layer->weight, x.reshape({-1})).view({1, 1, 24})));
}

class Bf16Generation : public ::testing::TestWithParam<std::string> {};

TEST_P(Bf16Generation, EqualsFp32DecodingOfRoundedWeights) {
  if (bytelm::testing::test_device() != "cpu") GTEST_SKIP() << "bf16 decoding weights are a CPU path";
  auto model = bytelm::testing::tiny_model(GetParam(), 7);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters())
      if (p.dim() == 2) p.copy_(rounded(p));
  }
  GenerateOptions o;
  o.precision = "fp32";
  o.prompt = "The cat";
  o.max_bytes = 90;  // past the tiny context of 64: the window slides
  for (double temperature : {0.0, 1.0}) {
    o.temperature = temperature;
    o.seed = 5;
    o.decode_weights = "fp32";
    const std::string fp32 = generate(*model, o, [](uint8_t) {});
    o.decode_weights = "bf16";
    const std::string bf16 = generate(*model, o, [](uint8_t) {});
    EXPECT_EQ(bf16, fp32) << GetParam() << " temperature " << temperature;
    EXPECT_EQ(bf16.size(), 90u);
  }
}

INSTANTIATE_TEST_SUITE_P(All, Bf16Generation, ::testing::Values("transformer", "megabyte", "blt"));

TEST(Bf16Decoding, OptionsAreChecked) {
  GenerateOptions o;
  o.decode_weights = "int4";
  EXPECT_THROW(check_generate_options(o), Error);
  o.decode_weights = "bf16";
  EXPECT_NO_THROW(check_generate_options(o));
  o.precision = "bf16";
  EXPECT_THROW(check_generate_options(o), Error);
  o.precision = "fp32";
  o.device = "cuda";
  EXPECT_THROW(check_generate_options(o), Error);
  EXPECT_NO_THROW(check_decode_weights("fp32", "cuda", "bf16"));
  EXPECT_THROW(check_decode_weights("bf16", "cuda:1", "fp32"), Error);
}
