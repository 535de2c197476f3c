// attention.cpp — the attention arithmetic shared by every block (declared in blocks.h): the plain masked
// softmax, LibTorch 2.x's scaled_dot_product_attention where available, and on 1.13 a chunked causal
// attention with a recomputing backward (FlashAttention's recipe in LibTorch ops) for long sequences.
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

namespace {
// Causal self-attention in query chunks, for LibTorch 1.13 on the CPU (no fused kernel there): the full
// (T, T) score matrix is never held, neither in the forward pass nor for the backward pass, which
// recomputes each chunk's scores from q, k and the saved log-sum-exp (the FlashAttention recipe, with
// LibTorch ops). Chunk c of queries only sees keys [0, end of c), which also halves the work.
// q, k, v: (B, H, T, Dh) -> (B, H, T, Dh).
struct ChunkedCausalAttention : torch::autograd::Function<ChunkedCausalAttention> {
  // Scores of queries [a, a + c) against keys [0, a + c), causally masked: (B, H, c, a + c).
  static torch::Tensor scores(const torch::Tensor& qc, const torch::Tensor& kk, int64_t a, int64_t c) {
    return scaled_scores(qc, kk).masked_fill_(causal_keep_mask(c, a + c, qc.device()).logical_not(), -INFINITY);
  }
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, int64_t chunk) {
    const int64_t T = q.size(2);
    auto o = torch::empty_like(q);
    auto lse = torch::empty(q.sizes().slice(0, 3), q.options());  // (B, H, T)
    for (int64_t a = 0; a < T; a += chunk) {
      const int64_t c = std::min(chunk, T - a);
      auto s = scores(q.narrow(2, a, c), k.narrow(2, 0, a + c), a, c);
      auto l = s.logsumexp(-1, /*keepdim=*/true);                                    // (B, H, c, 1)
      o.narrow(2, a, c).copy_(torch::matmul(s.sub_(l).exp_(), v.narrow(2, 0, a + c)));
      lse.narrow(2, a, c).copy_(l.squeeze(-1));
    }
    ctx->save_for_backward({q, k, v, o, lse});
    ctx->saved_data["chunk"] = chunk;
    return o;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &o = saved[3], &lse = saved[4];
    const int64_t chunk = ctx->saved_data["chunk"].toInt(), T = q.size(2);
    const double scale = 1.0 / std::sqrt(double(q.size(-1)));
    auto dout = grads[0].contiguous();
    auto delta = (dout * o).sum(-1, /*keepdim=*/true);                               // (B, H, T, 1)
    auto dq = torch::empty_like(q), dk = torch::zeros_like(k), dv = torch::zeros_like(v);
    for (int64_t a = 0; a < T; a += chunk) {
      const int64_t c = std::min(chunk, T - a);
      auto qc = q.narrow(2, a, c), kk = k.narrow(2, 0, a + c), vv = v.narrow(2, 0, a + c), dc = dout.narrow(2, a, c);
      auto p = scores(qc, kk, a, c).sub_(lse.narrow(2, a, c).unsqueeze(-1)).exp_();  // (B, H, c, a + c)
      dv.narrow(2, 0, a + c).add_(torch::matmul(p.transpose(-2, -1), dc));
      auto ds = p.mul_(torch::matmul(dc, vv.transpose(-2, -1)).sub_(delta.narrow(2, a, c)));
      dq.narrow(2, a, c).copy_(torch::matmul(ds, kk).mul_(scale));
      dk.narrow(2, 0, a + c).add_(torch::matmul(ds.transpose(-2, -1), qc).mul_(scale));
    }
    return {dq, dk, dv, torch::Tensor()};
  }
};
}  // namespace

torch::Tensor chunked_causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                       int64_t chunk) {
  return ChunkedCausalAttention::apply(q, k, v, chunk);
}

torch::Tensor attention_keep(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             const torch::Tensor& keep) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, keep);
#else
  return torch::matmul(torch::softmax(scaled_scores(q, k).masked_fill(keep.logical_not(), -INFINITY), -1), v);
#endif
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, bool causal) {
  const int64_t Tq = q.size(2), Tk = k.size(2);
  if (!causal || Tq == 1) {
#if TORCH_VERSION_MAJOR >= 2
    return at::scaled_dot_product_attention(q, k, v);
#else
    return torch::matmul(torch::softmax(scaled_scores(q, k), -1), v);
#endif
  }
#if TORCH_VERSION_MAJOR >= 2
  if (Tq == Tk) return at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true);
#else
  // LibTorch 1.13 has no public fused kernel. Long causal self-attention goes in query chunks (memory
  // O(T * chunk) instead of O(T^2)); the rest is the math path.
  if (Tq == Tk && Tq > kAttentionChunk) return chunked_causal_attention(q, k, v, kAttentionChunk);
#endif
  return attention_keep(q, k, v, causal_keep_mask(Tq, Tk, q.device()));
}

torch::Tensor attention_with_mask(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  const torch::Tensor& additive_mask) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, additive_mask.to(q.scalar_type()));
#else
  auto scores = scaled_scores(q, k);
  return torch::matmul(torch::softmax(scores + additive_mask.to(scores.scalar_type()), -1), v);
#endif
}

}  // namespace bytelm
