// decode_weights.cpp — the thread's bf16 weight copies for batch-1 CPU decoding (see decode_weights.h).
#include "model/decode_weights.h"

#include <torch/torch.h>

#include <unordered_map>

#include "util/error.h"

namespace bytelm {

struct Bf16Decoding::Cache {
  struct Entry {
    uint32_t version;
    torch::Tensor bf16;  // (out, in) contiguous
  };
  std::unordered_map<const void*, Entry> copies;  // keyed by the weight's TensorImpl
};

namespace {
thread_local Bf16Decoding::Cache* active = nullptr;
}

void check_decode_weights(const std::string& value, const std::string& device, const std::string& precision) {
  if (value != "fp32" && value != "bf16") throw Error("--decode-weights must be fp32 or bf16, not '" + value + "'");
  if (value == "bf16" && (device != "cpu" || precision == "bf16"))
    throw Error(
        "--decode-weights bf16 is for fp32 decoding on the CPU (on CUDA, or for bf16 arithmetic, use "
        "--precision bf16)");
}

Bf16Decoding::Bf16Decoding(bool enabled) : previous_(active) {
  if (enabled) cache_ = std::make_unique<Cache>();
  active = cache_.get();
}

Bf16Decoding::~Bf16Decoding() { active = previous_; }

size_t Bf16Decoding::copies() const { return cache_ ? cache_->copies.size() : 0; }

const at::Tensor* bf16_decode_weight(const at::Tensor& weight) {
  if (active == nullptr || !weight.device().is_cpu() || weight.scalar_type() != torch::kFloat32 || weight.dim() != 2)
    return nullptr;
  const uint32_t version = weight.is_inference() ? 0 : weight._version();  // inference tensors have none
  auto& entry = active->copies[weight.unsafeGetTensorImpl()];
  if (!entry.bf16.defined() || entry.version != version) {
    torch::NoGradGuard no_grad;
    entry.bf16 = weight.detach().to(torch::kBFloat16).contiguous();  // round to nearest even
    entry.version = version;
  }
  return &entry.bf16;
}

}  // namespace bytelm
