// backends.h — the c10d backends behind ProcessGroup, one file each: Gloo (process_group.cpp, always built)
// and NCCL (process_group_nccl.cpp, built only when LibTorch has CUDA). Internal to src/distributed.
#pragma once
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>

#include "distributed/dist_env.h"

namespace bytelm {

// NCCL over `device` (a CUDA device, made current here). In a build without CUDA it throws Error (exit 2).
c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store, const DistEnv& env,
                                                    std::chrono::milliseconds timeout, const torch::Device& device);

}  // namespace bytelm
