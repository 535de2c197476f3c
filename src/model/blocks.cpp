// blocks.cpp — shared building blocks (see blocks.h).
#include "model/blocks.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <tuple>

#include "model/decode_weights.h"
#include "util/bf16_gemv.h"
#include "util/device.h"
#include "util/error.h"

namespace bytelm {

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  // fp32 (CPU training and decoding): the same arithmetic without the dtype round trips, which cost a
  // dispatch each in every decoding step.
  if (x.scalar_type() == torch::kFloat32 && weight.scalar_type() == torch::kFloat32)
    return x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps) * weight;
  // Normalise in fp32 even when activations are bf16 (GPU): the mean of squares needs the range.
  auto xf = x.to(torch::kFloat32);
  auto normed = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return normed.to(x.scalar_type()) * weight.to(x.scalar_type());
}

void Rotary::ensure(int64_t positions, const torch::Device& device) {
  // Tables made under InferenceMode (generation) cannot take part in autograd; remake them for training.
  const bool usable = !cos_.defined() || !cos_.is_inference() || c10::InferenceMode::is_enabled();
  if (cos_.defined() && cos_.size(0) >= positions && cos_.device() == device && usable) return;
  int64_t capacity = 64;
  while (capacity < positions) capacity *= 2;
  int64_t half = head_dim_ / 2;
  auto inv_freq = torch::pow(theta_, -torch::arange(0, half, torch::kFloat64) / double(half));
  auto pos = torch::arange(0, capacity, torch::kFloat64);
  auto angles = torch::outer(pos, inv_freq);  // (capacity, Dh/2)
  cos_ = angles.cos().to(torch::kFloat32).to(device);
  sin_ = angles.sin().to(torch::kFloat32).to(device);
}

torch::Tensor Rotary::apply(const torch::Tensor& x, int64_t pos0) {
  if (!enabled()) return x;
  const int64_t T = x.size(2);
  ensure(pos0 + T, x.device());
  return rotate(x, cos_.narrow(0, pos0, T), sin_.narrow(0, pos0, T));  // tables (T, Dh/2)
}

torch::Tensor Rotary::apply_at(const torch::Tensor& x, const torch::Tensor& pos) {
  if (!enabled()) return x;
  auto index = pos.view({1});
  return rotate(x, cos_.index_select(0, index), sin_.index_select(0, index));  // tables (1, Dh/2)
}

namespace {
// The rotation as one loop over x, for fp32 on the CPU without autograd (decoding, evaluation): a cached
// decoding step otherwise spends ~12 small tensor ops per rotation, twice per layer and byte. Each element gets
// the same multiplies and adds as the tensor ops below, so results are bit-identical.
// x (R, T, Dh) rows of T positions; cos, sin (T, Dh/2), or with group > 0 one (T, Dh/2) table per group
// of `group` consecutive rows: (R / group, T, Dh/2) (row decoding: each sequence at its own positions).
torch::Tensor rotate_loop(const torch::Tensor& x, const torch::Tensor& cos_t, const torch::Tensor& sin_t,
                          bool interleaved, int64_t group) {
  const auto xc = x.contiguous();
  const auto c = cos_t.contiguous(), s = sin_t.contiguous();
  auto out = torch::empty_like(xc);
  const int64_t T = xc.size(-2), Dh = xc.size(-1), half = Dh / 2, rows = xc.numel() / std::max<int64_t>(T * Dh, 1);
  const float *xp = xc.data_ptr<float>(), *cp = c.data_ptr<float>(), *sp = s.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(T * Dh, 1));
  at::parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t t = 0; t < T; ++t) {
        const float* xi = xp + (r * T + t) * Dh;
        float* o = op + (r * T + t) * Dh;
        const int64_t table = group > 0 ? (r / group) * T + t : t;
        const float *ct = cp + table * half, *st = sp + table * half;
        for (int64_t i = 0; i < half; ++i) {
          const int64_t i1 = interleaved ? 2 * i : i, i2 = interleaved ? 2 * i + 1 : i + half;
          const float a = xi[i1], b = xi[i2];
          const float ac = a * ct[i], bs = b * st[i], bc = b * ct[i], as = a * st[i];
          o[i1] = ac - bs;
          o[i2] = bc + as;
        }
      }
  });
  return out;
}
}  // namespace

torch::Tensor Rotary::rotate(const torch::Tensor& x, const torch::Tensor& cos_t, const torch::Tensor& sin_t,
                             int64_t group) const {
  const int64_t half = head_dim_ / 2;
  if (x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && cos_t.scalar_type() == torch::kFloat32 &&
      !(torch::GradMode::is_enabled() && x.requires_grad()))
    return rotate_loop(x, cos_t, sin_t, interleaved_, group);
  auto cos = cos_t.to(x.scalar_type()), sin = sin_t.to(x.scalar_type());
  if (interleaved_) {
    auto pairs = x.unflatten(-1, {half, 2});  // (B, H, T, Dh/2, 2)
    auto x1 = pairs.select(-1, 0), x2 = pairs.select(-1, 1);
    return torch::stack({x1 * cos - x2 * sin, x2 * cos + x1 * sin}, -1).flatten(-2);
  }
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  return torch::cat({x1 * cos - x2 * sin, x2 * cos + x1 * sin}, -1);
}

namespace {
// A bias-free width x width projection registered on `owner` (q_proj, k_proj, v_proj, o_proj).
torch::nn::Linear projection(torch::nn::Module& owner, const char* name, int64_t width) {
  return owner.register_module(name, torch::nn::Linear(torch::nn::LinearOptions(width, width).bias(false)));
}
}  // namespace

CrossAttentionImpl::CrossAttentionImpl(int64_t width, int64_t heads_, double eps)
    : heads(heads_), head_dim(width / heads_) {
  q_norm = register_module("q_norm", RMSNorm(width, eps));
  k_norm = register_module("k_norm", RMSNorm(width, eps));
  q_proj = projection(*this, "q_proj", width);
  k_proj = projection(*this, "k_proj", width);
  v_proj = projection(*this, "v_proj", width);
  o_proj = projection(*this, "o_proj", width);
}

torch::Tensor CrossAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& kv, const torch::Tensor& mask) {
  const int64_t B = x.size(0), Q = x.size(1), S = kv.size(1), D = x.size(2);
  auto q = q_proj(q_norm(x)).view({B, Q, heads, head_dim}).transpose(1, 2);  // (B, H, Q, Dh)
  auto kvn = k_norm(kv);
  auto k = k_proj(kvn).view({B, S, heads, head_dim}).transpose(1, 2);  // (B, H, S, Dh)
  auto v = v_proj(kvn).view({B, S, heads, head_dim}).transpose(1, 2);
  auto y = attention_with_mask(q, k, v, mask);  // (B, H, Q, Dh)
  return o_proj(y.transpose(1, 2).reshape({B, Q, D}));
}

torch::Tensor CrossAttentionImpl::forward_grouped(const torch::Tensor& x, const torch::Tensor& kv,
                                                  const torch::Tensor& index, const torch::Tensor& valid) {
  const int64_t B = x.size(0), Q = x.size(1), D = x.size(2), G = index.size(2);
  auto q = q_proj(q_norm(x)).view({B, Q, heads, 1, head_dim});  // (B, Q, H, 1, Dh)
  auto kvn = k_norm(kv);
  auto flat = index.reshape({B, Q * G, 1}).expand({B, Q * G, D});
  auto group = [&](const torch::Tensor& t) {  // (B, S, D) -> (B, Q, H, G, Dh)
    return t.gather(1, flat).view({B, Q, G, heads, head_dim}).permute({0, 1, 3, 2, 4});
  };
  auto k = group(k_proj(kvn)), v = group(v_proj(kvn));
  auto scores = scaled_scores(q, k);  // (B, Q, H, 1, G)
  if (valid.defined())
    // The dtype's own lowest value (bf16 under autocast): finite, so a query with nothing valid averages.
    scores =
        scores.masked_fill(valid.view({B, Q, 1, 1, G}).logical_not(),
                           scores.scalar_type() == torch::kBFloat16 ? -3.38e38 : std::numeric_limits<float>::lowest());
  auto y = torch::matmul(torch::softmax(scores, -1), v);  // (B, Q, H, 1, Dh)
  return o_proj(y.reshape({B, Q, D}));
}

AttentionImpl::AttentionImpl(int64_t width, int64_t heads_) : heads(heads_), head_dim(width / heads_) {
  q_proj = projection(*this, "q_proj", width);
  k_proj = projection(*this, "k_proj", width);
  v_proj = projection(*this, "v_proj", width);
  o_proj = projection(*this, "o_proj", width);
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, Rotary& rope, int64_t pos0, KVCache* cache) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2);
  auto split = [&](const torch::Tensor& t) { return t.view({B, T, heads, head_dim}).transpose(1, 2); };
  auto q = rope.apply(split(project(q_proj, x)), pos0);  // (B, H, T, Dh)
  auto k = rope.apply(split(project(k_proj, x)), pos0);
  auto v = split(project(v_proj, x));
  if (cache) {
    if (cache->len + T > cache->k.size(2))
      throw Error("KV cache overflow: " + std::to_string(cache->len + T) + " positions, capacity " +
                  std::to_string(cache->k.size(2)));
    cache->k.narrow(2, cache->len, T).copy_(k);
    cache->v.narrow(2, cache->len, T).copy_(v);
    cache->len += T;
    k = cache->k.narrow(2, 0, cache->len);
    v = cache->v.narrow(2, 0, cache->len);
  }
  auto y = attention(q, k, v, /*causal=*/true);  // (B, H, T, Dh)
  return project(o_proj, y.transpose(1, 2).reshape({B, T, D}));
}

torch::Tensor AttentionImpl::step(const torch::Tensor& x, Rotary& rope, const torch::Tensor& pos, int64_t span,
                                  KVCache& cache) {
  const int64_t B = x.size(0), D = x.size(2);
  auto split = [&](const torch::Tensor& t) { return t.view({B, 1, heads, head_dim}).transpose(1, 2); };
  auto q = rope.apply_at(split(project(q_proj, x)), pos);  // (B, H, 1, Dh)
  auto k = rope.apply_at(split(project(k_proj, x)), pos);
  auto v = split(project(v_proj, x));
  auto index = pos.view({1});
  cache.k.index_copy_(2, index, k.to(cache.k.scalar_type()));
  cache.v.index_copy_(2, index, v.to(cache.v.scalar_type()));
  auto keep = cache.positions.narrow(0, 0, span).le(pos).view({1, 1, 1, span});              // keys <= pos
  auto y = attention_keep(q, cache.k.narrow(2, 0, span), cache.v.narrow(2, 0, span), keep);  // (B, H, 1, Dh)
  return project(o_proj, y.transpose(1, 2).reshape({B, 1, D}));
}

SwiGLUImpl::SwiGLUImpl(int64_t width, int64_t hidden) {
  auto opts = [](int64_t in, int64_t out) { return torch::nn::LinearOptions(in, out).bias(false); };
  gate_proj = register_module("gate_proj", torch::nn::Linear(opts(width, hidden)));
  up_proj = register_module("up_proj", torch::nn::Linear(opts(width, hidden)));
  down_proj = register_module("down_proj", torch::nn::Linear(opts(hidden, width)));
}

torch::Tensor SwiGLUImpl::forward(const torch::Tensor& x) {
  return project(down_proj, torch::silu(project(gate_proj, x)) * project(up_proj, x));
}

BlockImpl::BlockImpl(const StackConfig& cfg, double eps) {
  input_layernorm = register_module("input_layernorm", RMSNorm(cfg.width, eps));
  self_attn = register_module("self_attn", Attention(cfg.width, cfg.heads));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(cfg.width, eps));
  mlp = register_module("mlp", SwiGLU(cfg.width, cfg.hidden()));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, Rotary& rope, int64_t pos0, KVCache* cache) {
  auto h = x + self_attn(input_layernorm(x), rope, pos0, cache);
  return h + mlp(post_attention_layernorm(h));
}

torch::Tensor BlockImpl::step(const torch::Tensor& x, Rotary& rope, const torch::Tensor& pos, int64_t span,
                              KVCache& cache) {
  auto h = x + self_attn->step(input_layernorm(x), rope, pos, span, cache);
  return h + mlp(post_attention_layernorm(h));
}

StackImpl::StackImpl(const StackConfig& cfg_, double eps, bool final_norm)
    : cfg(cfg_), rope(cfg_.width / cfg_.heads, cfg_.rope_theta, cfg_.rope_interleaved) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.layers; ++i) layers->push_back(Block(cfg, eps));
  if (final_norm) norm = register_module("norm", RMSNorm(cfg.width, eps));
}

torch::Tensor StackImpl::blocks(const torch::Tensor& x, int64_t pos0, std::vector<KVCache>* caches) {
  auto h = x;
  for (size_t i = 0; i < layers->size(); ++i)
    h = layers[i]->as<BlockImpl>()->forward(h, rope, pos0, caches ? &(*caches)[i] : nullptr);
  return h;
}

torch::Tensor StackImpl::forward(const torch::Tensor& x, int64_t pos0, std::vector<KVCache>* caches) {
  auto h = blocks(x, pos0, caches);
  return norm ? norm(h) : h;
}

torch::Tensor StackImpl::step(const torch::Tensor& x, const torch::Tensor& pos, int64_t span,
                              std::vector<KVCache>& caches) {
  auto h = x;
  for (size_t i = 0; i < layers->size(); ++i) h = layers[i]->as<BlockImpl>()->step(h, rope, pos, span, caches[i]);
  return norm ? norm(h) : h;
}

std::vector<KVCache> StackImpl::make_caches(int64_t batch, int64_t capacity, std::vector<KVCache> old) {
  auto w = parameters().front();
  // Keys are stored in the dtype they are computed in (bf16 under autocast).
  auto opts = torch::TensorOptions().dtype(compute_dtype(w.device(), w.scalar_type())).device(w.device());
  rope.reserve(capacity, w.device());  // the static step reads the tables, never grows them
  const std::vector<int64_t> shape{batch, cfg.heads, capacity, cfg.width / cfg.heads};
  if (int64_t(old.size()) == cfg.layers && reusable(old[0].k, shape, opts)) {
    for (auto& c : old) c.len = 0;  // stale entries are never read: lengths and position masks exclude them
    return old;
  }
  std::vector<KVCache> caches(cfg.layers);
  for (auto& c : caches) {
    c.k = torch::zeros(shape, opts);
    c.v = torch::zeros_like(c.k);
    c.positions = torch::arange(capacity, torch::TensorOptions().dtype(torch::kLong).device(w.device()));
  }
  return caches;
}

namespace {
bool cpu_autocast() { return at::autocast::is_autocast_enabled(at::kCPU); }
}  // namespace

torch::Tensor project(torch::nn::Linear& layer, const torch::Tensor& x) {
  const auto& w = layer->weight;  // (out, in)
  const bool one_row = x.numel() == w.size(1) && x.dim() >= 1;
  if (!one_row || !x.device().is_cpu() || x.scalar_type() != torch::kFloat32 || w.scalar_type() != torch::kFloat32 ||
      cpu_autocast() || layer->options.bias())
    return layer->forward(x);
  auto sizes = x.sizes().vec();
  sizes.back() = w.size(0);
  if (const torch::Tensor* wb = bf16_decode_weight(w)) {  // --decode-weights bf16: half the bytes to read
    const torch::Tensor xc = x.reshape({-1}).contiguous();
    torch::Tensor y = torch::empty({w.size(0)}, xc.options());
    const auto* wp = reinterpret_cast<const uint16_t*>(wb->data_ptr<at::BFloat16>());
    const float* xp = xc.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    const int64_t n = w.size(1);
    // Split rows across threads only for matrices of >= 4M weights (>= ~0.3 ms to read): waking LibTorch's
    // sleeping OpenMP threads (OMP_WAIT_POLICY=PASSIVE, see cli/main.cpp) costs more than smaller ones gain.
    const int64_t grain = std::max<int64_t>(64, (int64_t(1) << 22) / std::max<int64_t>(n, 1));
    at::parallel_for(0, w.size(0), grain, [&](int64_t b, int64_t e) { bf16_gemv_rows(wp, xp, yp, b, e, n); });
    return y.view(sizes);
  }
  return torch::mv(w, x.reshape({-1})).view(sizes);
}

bool reusable(const torch::Tensor& t, torch::IntArrayRef sizes, const torch::TensorOptions& options) {
  return t.defined() && t.sizes() == sizes && t.dtype() == options.dtype() && t.device() == options.device() &&
         t.is_inference() == c10::InferenceMode::is_enabled();
}

void init_weights(torch::nn::Module& module, double std, int64_t layers) {
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters()) {
    const std::string& name = item.key();
    auto& p = item.value();
    if (p.dim() < 2) continue;  // norms and pads are set by their owners
    bool residual_out = name.find("o_proj") != std::string::npos || name.find("down_proj") != std::string::npos;
    p.normal_(0.0, residual_out ? std / std::sqrt(2.0 * std::max<int64_t>(layers, 1)) : std);
  }
}

double stack_matmul_flops(const StackConfig& cfg) {
  double D = cfg.width, F = cfg.hidden();
  double per_layer = 4 * D * D + 3 * D * F;  // q, k, v, o + gate, up, down
  return 2.0 * cfg.layers * per_layer;
}

double stack_attention_flops(const StackConfig& cfg, double ctx) { return 2.0 * 2.0 * cfg.layers * ctx * cfg.width; }

}  // namespace bytelm
