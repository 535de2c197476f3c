// process_group_nccl.cpp — c10d's ProcessGroupNCCL for CUDA tensors (built only when LibTorch has CUDA).
// USE_C10D_NCCL is defined here, not on the command line, so the file keeps the library's precompiled torch
// header. nccl.h comes from the nvidia-nccl wheel beside torch (the NCCL LibTorch was built with), so the
// header's NCCL_HAS_* switches give the same Options layout as libtorch_cuda.so's.
#include "distributed/backends.h"

#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif

#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include "util/error.h"

namespace bytelm {

c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store, const DistEnv& env,
                                                    std::chrono::milliseconds timeout, const torch::Device& device) {
  // Each rank drives its own GPU; communicators are created on the current device at the first collective.
  c10::cuda::set_device(device.index());
  auto opts = c10d::ProcessGroupNCCL::Options::create();
  opts->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.world_size, opts);
}

}  // namespace bytelm
