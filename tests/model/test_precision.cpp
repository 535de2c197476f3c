// test_precision.cpp — bf16 autocast against fp32, cached decoding under autocast, and (with a GPU) CUDA
// against CPU, for every model. Runs on $BYTELM_TEST_DEVICE (default cpu; scripts/gpu/check.sh: cuda).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/autocast_mode.h>

#include "common/test_device.h"
#include "model/blt.h"
#include "model/model.h"
#include "util/device.h"

using namespace bytelm;
using bytelm::testing::test_device;

namespace {

LanguageModel tiny_model(const std::string& name) { return bytelm::testing::tiny_model(name, 0, "cpu"); }

torch::Tensor random_bytes(int64_t B, int64_t T, int64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, 256, {B, T}, torch::kLong);
}

// Largest absolute difference relative to the reference's largest absolute value.
double relative_error(const torch::Tensor& a, const torch::Tensor& ref) {
  auto r = ref.to(torch::kCPU, torch::kFloat32);
  return ((a.to(torch::kCPU, torch::kFloat32) - r).abs().max() / r.abs().max()).item<double>();
}

class Precision : public ::testing::TestWithParam<std::string> {};

}  // namespace

// bf16 autocast changes logits by bf16 rounding only (8 bits of mantissa: ~0.4% per op, a few % overall),
// and the loss it gives is that of fp32 to within 1%.
TEST_P(Precision, Bf16AutocastCloseToFp32) {
  const torch::Device device(test_device());
  auto model = tiny_model(GetParam());
  model->to(device);
  model->eval();
  torch::NoGradGuard no_grad;
  auto x = random_bytes(2, model->config().context, 1).to(device);
  auto ref = model->forward(x);
  torch::Tensor low;
  {
    AutocastScope autocast(device, true);
    low = model->forward(x);
  }
  EXPECT_EQ(ref.scalar_type(), torch::kFloat32);
  const double err = relative_error(low, ref);
  EXPECT_LT(err, 0.05) << GetParam();
  EXPECT_GT(err, 0.0) << "autocast had no effect";
  const double loss_ref = byte_loss(ref, x, model->vocab_offset()).item<double>();
  const double loss_low = byte_loss(low, x, model->vocab_offset()).item<double>();
  EXPECT_NEAR(loss_low, loss_ref, 0.01 * loss_ref);
}

// Cached decoding under autocast (KV caches in bf16) follows the full forward pass under autocast.
TEST_P(Precision, CachedDecodingUnderAutocast) {
  const torch::Device device(test_device());
  auto model = tiny_model(GetParam());
  model->to(device);
  model->eval();
  c10::InferenceMode inference;
  AutocastScope autocast(device, true);
  const int64_t T = model->config().context, B = GetParam() == "blt" ? 1 : 2;
  auto x = random_bytes(B, T, 2).to(device);
  auto full = model->forward(x);
  auto first = model->start(B);
  auto rest = model->feed(x.narrow(1, 0, T - 1));
  auto cached = torch::cat({first.unsqueeze(1), rest}, 1);
  EXPECT_LT(relative_error(cached, full), 0.05) << GetParam();
  // Greedy choices agree wherever fp32 has a clear winner.
  EXPECT_GT((cached.argmax(-1) == full.argmax(-1)).to(torch::kFloat32).mean().item<double>(), 0.9);
}

// The same weights on CUDA give CPU's logits: fp32 within 1e-4 (TF32 off), bf16 within bf16 tolerance.
TEST_P(Precision, CudaMatchesCpu) {
  BYTELM_SKIP_WITHOUT_CUDA();
  at::globalContext().setFloat32MatmulPrecision("highest");  // no TF32 in fp32 matmuls
  auto model = tiny_model(GetParam());
  model->eval();
  torch::NoGradGuard no_grad;
  auto x = random_bytes(2, model->config().context, 3);
  auto ref = model->forward(x);
  model->to(torch::kCUDA);
  auto on_gpu = model->forward(x.to(torch::kCUDA));
  EXPECT_LT(relative_error(on_gpu, ref), 1e-4) << GetParam();
  AutocastScope autocast(torch::Device(torch::kCUDA), true);
  EXPECT_LT(relative_error(model->forward(x.to(torch::kCUDA)), ref), 0.05) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(All, Precision, ::testing::Values("transformer", "megabyte", "entropy", "blt"));

TEST(AutocastScope, NestsAndRestores) {
  const torch::Device cpu(torch::kCPU);
  EXPECT_EQ(compute_dtype(cpu, torch::kFloat32), torch::kFloat32);
  {
    AutocastScope outer(cpu, true);
    EXPECT_EQ(compute_dtype(cpu, torch::kFloat32), torch::kBFloat16);
    {
      AutocastScope off(cpu, false);  // disabled scopes change nothing
      EXPECT_EQ(compute_dtype(cpu, torch::kFloat32), torch::kBFloat16);
      AutocastScope inner(cpu, true);
      auto y = torch::matmul(torch::ones({2, 2}), torch::ones({2, 2}));
      EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
    }
    EXPECT_EQ(compute_dtype(cpu, torch::kFloat32), torch::kBFloat16);
  }
  EXPECT_EQ(compute_dtype(cpu, torch::kFloat32), torch::kFloat32);
  EXPECT_EQ(torch::matmul(torch::ones({2, 2}), torch::ones({2, 2})).scalar_type(), torch::kFloat32);
}

TEST(Precision, ParsesFlag) {
  EXPECT_FALSE(use_bf16("auto", "cpu"));
  EXPECT_TRUE(use_bf16("auto", "cuda"));
  EXPECT_TRUE(use_bf16("bf16", "cpu"));
  EXPECT_FALSE(use_bf16("fp32", "cuda:0"));
  EXPECT_THROW(use_bf16("fp16", "cpu"), std::exception);
}
