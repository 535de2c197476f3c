// attention.cpp — the attention arithmetic shared by every block (declared in blocks.h): ATen's
// scaled_dot_product_attention (fused kernels on the CPU and CUDA: FlashAttention-style, so the (T, T)
// scores of causal self-attention are never held), with boolean or additive masks where a block needs them.
#include "model/blocks.h"

#include <ATen/autocast_mode.h>

#include <cmath>
#include <limits>
#include <map>
#include <tuple>

#include "util/device.h"
#include "util/error.h"

namespace bytelm {

namespace {
// Boolean (Tq, Tk) mask, true where query i may see key j: j <= Tk - Tq + i. Cached per shape.
torch::Tensor causal_keep_mask(int64_t Tq, int64_t Tk, const torch::Device& device) {
  thread_local std::map<std::tuple<int64_t, int64_t, std::string>, torch::Tensor> cache;
  auto key = std::make_tuple(Tq, Tk, device.str());
  auto it = cache.find(key);
  if (it != cache.end() && (!it->second.is_inference() || c10::InferenceMode::is_enabled())) return it->second;
  auto mask = torch::ones({Tq, Tk}, torch::TensorOptions().dtype(torch::kBool).device(device)).tril(Tk - Tq);
  if (cache.size() > 64) cache.clear();
  cache[key] = mask;
  return mask;
}
}  // namespace

torch::Tensor scaled_scores(const torch::Tensor& q, const torch::Tensor& k) {
  return torch::matmul(q, k.transpose(-2, -1)).mul_(1.0 / std::sqrt(double(q.size(-1))));
}

torch::Tensor attention_keep(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             const torch::Tensor& keep) {
  return at::scaled_dot_product_attention(q, k, v, keep);
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, bool causal) {
  const int64_t Tq = q.size(2), Tk = k.size(2);
  if (!causal || Tq == 1) return at::scaled_dot_product_attention(q, k, v);
  if (Tq == Tk) return at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true);
  return attention_keep(q, k, v, causal_keep_mask(Tq, Tk, q.device()));
}

torch::Tensor attention_with_mask(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  const torch::Tensor& additive_mask) {
  return at::scaled_dot_product_attention(q, k, v, additive_mask.to(q.scalar_type()));
}

}  // namespace bytelm
