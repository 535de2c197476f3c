// decode_weights.h — bf16 weights for batch-1 decoding on the CPU (`--decode-weights bf16`). One byte of
// cached decoding multiplies one row of activations by every weight matrix, so it is bound by the bytes of
// weights read; stored as bf16 they are half as many. Activations, products and sums stay fp32 (the
// result equals fp32 arithmetic on the bf16-rounded weights); training and evaluation never use this.
#pragma once
#include <memory>
#include <string>

namespace at {
class Tensor;
}

namespace bytelm {

// Throws Error naming --decode-weights unless `value` is "fp32", or "bf16" for fp32 decoding on the CPU
// (device "cpu", precision not "bf16": on CUDA, or for bf16 arithmetic, --precision bf16 is the option).
void check_decode_weights(const std::string& value, const std::string& device, const std::string& precision);

// While one is alive and enabled on a thread, project() (blocks.h) multiplies single fp32 rows on the CPU
// by a bf16 copy of each weight, made on first use and kept until the scope ends (a weight changed in
// place is copied again). Scopes nest; the innermost one decides.
class Bf16Decoding {
 public:
  explicit Bf16Decoding(bool enabled);
  ~Bf16Decoding();
  Bf16Decoding(const Bf16Decoding&) = delete;
  Bf16Decoding& operator=(const Bf16Decoding&) = delete;
  size_t copies() const;  // weights copied to bf16 so far (0 when disabled)
  struct Cache;

 private:
  std::unique_ptr<Cache> cache_;
  Cache* previous_ = nullptr;
};

// The bf16 copy of `weight` (2-D fp32, CPU) under an enabled Bf16Decoding on this thread, else nullptr.
const at::Tensor* bf16_decode_weight(const at::Tensor& weight);

}  // namespace bytelm
