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
// patches at spaces: dynamic patches without a trained entropy model. "megabyte_conv", "megabyte_xpatch",
// "megabyte_levels", "megabyte_all": the tiny MEGABYTE (P = 4) with a conv encoder (kernels 3, 5), cross-patch
// attention (2 keys; 1 in "all"), a middle level over 2-byte units, or all three.
inline LanguageModel tiny_model(const std::string& name, uint64_t seed, const std::string& device = test_device()) {
  torch::manual_seed(seed);
  const bool variant = name.rfind("megabyte_", 0) == 0;
  auto cfg = load_config("tiny", variant ? "megabyte" : name);
  if (name == "blt") cfg.patching.mode = "space";
  if (name == "megabyte_conv" || name == "megabyte_all") cfg.conv_kernels = {3, 5};
  if (name == "megabyte_xpatch") cfg.cross_patch = 4;
  if (name == "megabyte_levels" || name == "megabyte_all") {
    LevelConfig level;
    level.patch_size = 2;
    level.stack = cfg.local;
    cfg.levels = {level};
  }
  if (name == "megabyte_all") cfg.cross_patch = 1;
  if (variant) cfg.validate();
  auto model = make_model(cfg);
  model->to(torch::Device(device));
  model->eval();
  return model;
}

}  // namespace bytelm::testing

#define BYTELM_SKIP_WITHOUT_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device"
