// device.cpp — see device.h. Autocast through LibTorch's device-generic API (at::autocast::*(device type));
// no other file touches it.
#include "util/device.h"

#include <ATen/autocast_mode.h>

#ifdef BYTELM_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

#include "util/error.h"

namespace bytelm {

bool use_bf16(const std::string& precision, const std::string& device) {
  if (precision == "fp32") return false;
  if (precision == "bf16") return true;
  if (precision == "auto") return device.rfind("cuda", 0) == 0;
  throw Error("--precision " + precision + ": expected fp32, bf16 or auto");
}

namespace {
bool autocast_enabled(bool cuda) { return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU); }
torch::ScalarType autocast_dtype(bool cuda) { return at::autocast::get_autocast_dtype(cuda ? at::kCUDA : at::kCPU); }
void set_autocast(bool cuda, bool enabled, torch::ScalarType dtype) {
  const auto type = cuda ? at::kCUDA : at::kCPU;
  at::autocast::set_autocast_dtype(type, dtype);
  at::autocast::set_autocast_enabled(type, enabled);
}
}  // namespace

AutocastScope::AutocastScope(const torch::Device& device, bool enabled) : enabled_(enabled), cuda_(device.is_cuda()) {
  if (!enabled_) return;
  was_enabled_ = autocast_enabled(cuda_);
  was_dtype_ = autocast_dtype(cuda_);
  set_autocast(cuda_, true, torch::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!enabled_) return;
  // Leaving the outermost scope drops autocast's cache of bf16 weight copies (as Python does).
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast(cuda_, was_enabled_, was_dtype_);
}

torch::ScalarType compute_dtype(const torch::Device& device, torch::ScalarType weights) {
  const bool cuda = device.is_cuda();
  return autocast_enabled(cuda) ? autocast_dtype(cuda) : weights;
}

void synchronize(const torch::Device& device) {
  if (!device.is_cuda()) return;
#ifdef BYTELM_CUDA
  c10::cuda::device_synchronize();
#else
  torch::zeros({1}, device).cpu();
#endif
}

bool cuda_compiled() {
#ifdef BYTELM_CUDA
  return true;
#else
  return false;
#endif
}

int64_t device_peak_bytes(const torch::Device& device) {
#ifdef BYTELM_CUDA
  if (device.is_cuda()) {
    const auto index = device.has_index() ? device.index() : c10::cuda::current_device();
    // allocated_bytes[0] is the aggregate over all pool types (StatType::AGGREGATE == 0).
    return c10::cuda::CUDACachingAllocator::getDeviceStats(index).allocated_bytes[0].peak;
  }
#endif
  (void)device;
  return 0;
}

void reset_device_peak(const torch::Device& device) {
#ifdef BYTELM_CUDA
  if (device.is_cuda())
    c10::cuda::CUDACachingAllocator::resetPeakStats(device.has_index() ? device.index() : c10::cuda::current_device());
#endif
  (void)device;
}

}  // namespace bytelm
