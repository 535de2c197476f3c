// device.h — compute device and precision: bf16 autocast scopes, synchronisation, GPU memory counters.
// bf16 is autocast (weights, optimizer state, norms and the loss stay fp32; matmuls and attention run in
// bf16): the simplest correct mixed precision, and the one PyTorch users know. See docs/usage.md (--precision) and
// docs/gpu.md.
#pragma once
#include <torch/torch.h>

#include <string>

namespace bytelm {

// --precision: "fp32" | "bf16" | "auto" (bf16 on CUDA, fp32 on CPU) -> whether to autocast to bf16.
// Throws Error on any other value.
bool use_bf16(const std::string& precision, const std::string& device);

// While alive (and `enabled`): autocast to bf16 on the device's type, as `torch.autocast` in Python.
// Thread-local, nestable; restores the previous state on destruction.
class AutocastScope {
 public:
  AutocastScope(const torch::Device& device, bool enabled);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool enabled_ = false, cuda_ = false, was_enabled_ = false;
  torch::ScalarType was_dtype_ = torch::kFloat32;
};

// The dtype activations have on `device` under the current autocast state, for weights of dtype `weights`
// (used to allocate KV caches in the dtype the keys are computed in).
torch::ScalarType compute_dtype(const torch::Device& device, torch::ScalarType weights);

// Waits for the device's queued work (no-op on CPU).
void synchronize(const torch::Device& device);

// True if this LibTorch was built with CUDA (BYTELM_CUDA: CMake found torch_cuda).
bool cuda_compiled();

// Peak bytes held by LibTorch's CUDA allocator on `device` since the last reset; 0 on CPU.
int64_t device_peak_bytes(const torch::Device& device);
void reset_device_peak(const torch::Device& device);

}  // namespace bytelm
