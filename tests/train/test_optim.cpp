// test_optim.cpp — the training step's parts: multi-tensor AdamW against the per-parameter reference,
// clipping without synchronisation against LibTorch's clip_grad_norm_, and the background batch loader
// against direct sampling.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "common/test_device.h"
#include "data/corpus.h"
#include "optim/adamw.h"
#include "train/loader.h"
#include "util/error.h"

using namespace bytelm;
using bytelm::testing::test_device;
namespace fs = std::filesystem;

namespace {

// Parameters of mixed shapes and decay rules on the test device, with deterministic gradients.
NamedTensors make_params(uint64_t seed) {
  torch::manual_seed(seed);
  const torch::Device device(test_device());
  NamedTensors p{{"layers.0.q_proj.weight", torch::randn({8, 6})},
                 {"norm.weight", torch::randn({6})},
                 {"embed_tokens.weight", torch::randn({10, 6})},
                 {"head.weight", torch::randn({4, 6})},
                 {"unused.weight", torch::randn({3, 3})}};
  for (auto& [name, t] : p) t = t.to(device).set_requires_grad(true);
  return p;
}

void set_grads(NamedTensors& params, int step) {
  torch::manual_seed(100 + step);
  for (auto& [name, t] : params)
    if (name != "unused.weight") t.mutable_grad() = torch::randn_like(t) * (step + 1);
}

std::string temp_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("bytelm_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

}  // namespace

// The multi-tensor (and, on CUDA with LibTorch 2.x, fused) update equals the per-parameter loop:
// bit for bit on CPU, to rounding on CUDA. Parameters without a gradient are left alone. With weight
// decay 0 all parameters form one group (each is updated once).
void expect_multi_tensor_equals_reference(double weight_decay) {
  auto a = make_params(1), b = make_params(1);
  AdamWOptions o;
  o.weight_decay = weight_decay;
  AdamW fast(a, o), ref(b, o);
  for (int step = 0; step < 5; ++step) {
    set_grads(a, step);
    set_grads(b, step);
    fast.step(1e-2, AdamW::Impl::Auto);
    ref.step(1e-2, AdamW::Impl::Reference);
  }
  const bool cpu = test_device() == "cpu";
  for (size_t i = 0; i < a.size(); ++i) {
    if (cpu)
      EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first << " decay " << weight_decay;
    else
      EXPECT_TRUE(torch::allclose(a[i].second, b[i].second, 1e-5, 1e-6)) << a[i].first << " decay " << weight_decay;
  }
  auto sa = fast.state(), sb = ref.state();
  for (size_t i = 0; i < sa.size(); ++i)
    EXPECT_TRUE(torch::allclose(sa[i].second, sb[i].second, 1e-5, 1e-7)) << sa[i].first;
  // The parameter without a gradient kept its value.
  EXPECT_TRUE(torch::equal(a[4].second, make_params(1)[4].second));
}

TEST(AdamW, MultiTensorEqualsReference) {
  expect_multi_tensor_equals_reference(0.1);
  expect_multi_tensor_equals_reference(0.0);
}

// Clipping matches LibTorch's clip_grad_norm_ (norm before clipping, scaled gradients) and returns a
// tensor on the device, read only when logged.
TEST(ClipGradNorm, MatchesLibTorch) {
  for (double max_norm : {0.5, 1e6}) {
    auto a = make_params(2), b = make_params(2);
    set_grads(a, 3);
    set_grads(b, 3);
    std::vector<torch::Tensor> pa, pb;
    for (auto& p : a) pa.push_back(p.second);
    for (auto& p : b) pb.push_back(p.second);
    auto norm = clip_grad_norm(pa, max_norm);
    EXPECT_EQ(norm.device(), pa[0].device());
    const double expected = torch::nn::utils::clip_grad_norm_(pb, max_norm);
    EXPECT_NEAR(norm.item<double>(), expected, 1e-4 * expected);
    for (size_t i = 0; i < pa.size(); ++i)
      if (pa[i].grad().defined()) EXPECT_TRUE(torch::allclose(pa[i].grad(), pb[i].grad(), 1e-5, 1e-6));
  }
  auto c = make_params(3);
  set_grads(c, 0);
  std::vector<torch::Tensor> pc;
  for (auto& p : c) pc.push_back(p.second);
  auto before = pc[0].grad().clone();
  clip_grad_norm(pc, 0);  // 0 = measure only
  EXPECT_TRUE(torch::equal(pc[0].grad(), before));
}

// The loader's batches are exactly Corpus::sample's for consecutive indices, on the device, as int64.
TEST(BatchLoader, EqualsDirectSampling) {
  auto dir = temp_dir("loader");
  std::string text;
  for (int i = 0; i < 5000; ++i) text += char(i * 31 % 251);
  std::ofstream(dir + "/a.bin", std::ios::binary) << text;
  Corpus corpus({dir + "/a.bin"}, 0.1);
  const torch::Device device(test_device());
  for (int depth : {1, 3}) {
    BatchLoader loader(corpus, Split::Train, 42, 3, 17, 10, device, depth);
    std::vector<uint8_t> buf(3 * 17);
    for (uint64_t i = 10; i < 20; ++i) {
      auto x = loader.next();
      EXPECT_EQ(x.scalar_type(), torch::kLong);
      EXPECT_EQ(x.device(), device);
      corpus.sample(Split::Train, 42, i, 3, 17, buf.data());
      auto ref = torch::from_blob(buf.data(), {3, 17}, torch::kUInt8).to(torch::kLong);
      EXPECT_TRUE(torch::equal(x.cpu(), ref)) << "batch " << i;
    }
  }  // destroyed with batches still queued: must not hang
  fs::remove_all(dir);
}

// An error on the loader thread (a window longer than the split) reaches the caller of next().
TEST(BatchLoader, RethrowsErrors) {
  auto dir = temp_dir("loader_err");
  std::ofstream(dir + "/a.bin", std::ios::binary) << std::string(100, 'x');
  Corpus corpus({dir + "/a.bin"}, 0.0);
  BatchLoader loader(corpus, Split::Train, 1, 2, 1000, 0, torch::Device(torch::kCPU));
  EXPECT_THROW(loader.next(), Error);
  fs::remove_all(dir);
}
