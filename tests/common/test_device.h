// test_device.h — the device the model tests run on: $BYTELM_TEST_DEVICE (scripts/gpu-check.sh sets
// "cuda"), else "cpu". Tests that need CUDA skip without it.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <string>

namespace bytelm::testing {

inline std::string test_device() {
  const char* d = std::getenv("BYTELM_TEST_DEVICE");
  return d && *d ? d : "cpu";
}

}  // namespace bytelm::testing

#define BYTELM_SKIP_WITHOUT_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device"
