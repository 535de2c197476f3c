// test_device.h — the device the model tests run on, and the tiny models they use: $BYTELM_TEST_DEVICE
// (scripts/gpu/check.sh sets "cuda"), else "cpu". Tests that need CUDA skip without it.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <string>

#include "model/factory.h"
#include "model/model.h"

namespace bytelm::testing {

inline std::string test_device() {
  const char* d = std::getenv("BYTELM_TEST_DEVICE");
  return d && *d ? d : "cpu";
}

// The tiny preset of `name` with random weights drawn from `seed`, on `device`, in eval mode. BLT cuts
// patches at spaces: dynamic patches without a trained entropy model.
inline LanguageModel tiny_model(const std::string& name, uint64_t seed, const std::string& device = test_device()) {
  torch::manual_seed(seed);
  auto cfg = load_config("tiny", name);
  if (name == "blt") cfg.patching.mode = "space";
  auto model = make_model(cfg);
  model->to(torch::Device(device));
  model->eval();
  return model;
}

}  // namespace bytelm::testing

#define BYTELM_SKIP_WITHOUT_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device"
