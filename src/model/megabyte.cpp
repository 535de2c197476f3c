// megabyte.cpp — MEGABYTE (see megabyte.h). Shapes: B batch, T bytes, P patch size, K = T/P patches,
// D_G global width per byte (global model width P*D_G), D_L local width.
#include "model/megabyte.h"

#include "util/device.h"
#include "util/error.h"

namespace bytelm {

MegabyteImpl::MegabyteImpl(const ModelConfig& cfg) : LanguageModelImpl(cfg) {
  const int64_t P = cfg.patch_size, DG = cfg.global_byte_width(), DL = cfg.local.width;
  global_embed = register_module("global_embed", torch::nn::Embedding(kByteVocab, DG));
  global_pos = register_module("global_pos", torch::nn::Embedding(cfg.context, DG));
  global_pad = register_parameter("global_pad", torch::zeros({P * DG}));
  global_model = register_module("global_model", Stack(cfg.global, cfg.norm_eps));
  global_to_local = register_module("global_to_local", torch::nn::Linear(torch::nn::LinearOptions(DG, DL).bias(false)));
  local_embed = register_module("local_embed", torch::nn::Embedding(kByteVocab, DL));
  local_pad = register_parameter("local_pad", torch::zeros({DL}));
  local_model = register_module("local_model", Stack(cfg.local, cfg.norm_eps));
  head = register_module("head", torch::nn::Linear(torch::nn::LinearOptions(DL, kByteVocab).bias(false)));

  torch::NoGradGuard no_grad;
  for (auto* m : std::initializer_list<torch::nn::Module*>{global_embed.get(), global_pos.get(), global_to_local.get(),
                                                          local_embed.get(), head.get()})
    init_weights(*m, cfg.init_std, 1);
  init_weights(*global_model, cfg.init_std, cfg.global.layers);
  init_weights(*local_model, cfg.init_std, cfg.local.layers);
  global_pad.normal_(0.0, cfg.init_std);
  local_pad.normal_(0.0, cfg.init_std);
}

torch::Tensor MegabyteImpl::forward(const torch::Tensor& bytes) {
  const int64_t B = bytes.size(0), T = bytes.size(1), P = cfg_.patch_size;
  const int64_t DG = cfg_.global_byte_width(), DL = cfg_.local.width;
  if (T > cfg_.context) throw Error("input of " + std::to_string(T) + " bytes exceeds the context");
  // Pad to whole patches; by causality the padding never affects the first T predictions.
  const int64_t K = (T + P - 1) / P, Tp = K * P;
  auto x = Tp == T ? bytes : torch::constant_pad_nd(bytes, {0, Tp - T}, 0);  // (B, Tp)

  // Patch embedder: (B, Tp, D_G) -> (B, K, P*D_G), pad patch in front, last patch dropped.
  auto h = global_embed(x) + global_pos->weight.narrow(0, 0, Tp);
  h = h.view({B, K, P * DG});
  auto patches = torch::cat({global_pad.view({1, 1, P * DG}).expand({B, 1, P * DG}), h.narrow(1, 0, K - 1)}, 1);

  auto g = global_model(patches);                        // (B, K, P*D_G)
  g = global_to_local(g.view({B, K, P, DG}));            // (B, K, P, D_L)

  // Local input at position p of patch k: projected slice p + embedding of byte kP+p-1 (pad at p=0).
  auto e = local_embed(x).view({B, K, P, DL});
  auto prev = torch::cat({local_pad.view({1, 1, 1, DL}).expand({B, K, 1, DL}), e.narrow(2, 0, P - 1)}, 2);
  auto y = local_model((g + prev).view({B * K, P, DL}));  // (B*K, P, D_L)
  auto logits = head(y).view({B, Tp, kByteVocab});
  return Tp == T ? logits : logits.narrow(1, 0, T);      // (B, T, 256)
}

torch::Tensor MegabyteImpl::global_step(const torch::Tensor& patch_in, int64_t k) {
  const int64_t B = patch_in.size(0), P = cfg_.patch_size, DG = cfg_.global_byte_width();
  auto g = global_model(patch_in.view({B, 1, P * DG}), k, &global_caches_);  // (B, 1, P*D_G)
  for (auto& c : local_caches_) c.len = 0;  // a new patch: the local model starts afresh
  return global_to_local(g.view({B, P, DG}));                                  // (B, P, D_L)
}

torch::Tensor MegabyteImpl::local_step(const torch::Tensor& x, int64_t p) {
  const int64_t B = x.size(0);
  auto y = local_model(x.view({B, 1, cfg_.local.width}), p, &local_caches_);  // (B, 1, D_L)
  return project(head, y).view({B, kByteVocab});
}

torch::Tensor MegabyteImpl::start(int64_t batch) {
  const int64_t P = cfg_.patch_size, K = cfg_.context / P;
  global_caches_ = global_model->make_caches(batch, K, std::move(global_caches_));
  local_caches_ = local_model->make_caches(batch, P, std::move(local_caches_));
  // Decoding state is allocated once per batch size (and dtype) and then overwritten in place, so the
  // tensors a captured CUDA graph points at stay valid from one start() to the next.
  const auto dev = head->weight.device();
  const auto longs = torch::TensorOptions().dtype(torch::kLong).device(dev);
  const auto ctx_opts = torch::TensorOptions().dtype(compute_dtype(dev, head->weight.scalar_type())).device(dev);
  if (!reusable(history_, {batch, cfg_.context}, longs) || !reusable(patch_ctx_, {batch, P, cfg_.local.width}, ctx_opts)) {
    history_ = torch::zeros({batch, cfg_.context}, longs);
    patch_ctx_ = torch::zeros({batch, P, cfg_.local.width}, ctx_opts);
    in_byte_ = torch::zeros({batch}, longs);
    p_ = torch::zeros({}, longs);
    k_ = torch::zeros({}, longs);
    zero_ = torch::zeros({}, longs);
    patch_offsets_ = torch::arange(P, longs);
    static_logits_ = torch::zeros({batch, kByteVocab}, torch::TensorOptions().device(dev));
  }
  history_.zero_();
  decoded_ = 0;
  patch_ctx_.copy_(global_step(global_pad.view({1, -1}).expand({batch, -1}), 0));
  return local_step(patch_ctx_.select(1, 0) + local_pad, 0);
}

torch::Tensor MegabyteImpl::feed(const torch::Tensor& bytes) {
  const int64_t B = bytes.size(0), n = bytes.size(1), P = cfg_.patch_size;
  if (decoded_ + n > cfg_.context - 1)
    throw Error("decoding past the context of " + std::to_string(cfg_.context) + " bytes");
  std::vector<torch::Tensor> out;
  out.reserve(n);
  for (int64_t i = 0; i < n; ++i) {
    auto b = bytes.select(1, i);  // (B)
    history_.select(1, decoded_).copy_(b);
    const int64_t next = ++decoded_, k = next / P, p = next % P;
    if (p == 0) {
      // Patch k-1 is complete: embed its bytes and advance the global model by one patch.
      auto idx = history_.narrow(1, (k - 1) * P, P);                                 // (B, P)
      auto emb = global_embed(idx) + global_pos->weight.narrow(0, (k - 1) * P, P);   // (B, P, D_G)
      patch_ctx_.copy_(global_step(emb.reshape({B, -1}), k));
      out.push_back(local_step(patch_ctx_.select(1, 0) + local_pad, 0));
    } else {
      out.push_back(local_step(patch_ctx_.select(1, p) + local_embed(b), p));
    }
  }
  return torch::stack(out, 1);  // (B, n, 256)
}

int64_t MegabyteImpl::static_prepare(const torch::Tensor& bytes) {
  const int64_t P = cfg_.patch_size;
  if (decoded_ + 1 > cfg_.context - 1)
    throw Error("decoding past the context of " + std::to_string(cfg_.context) + " bytes");
  history_.select(1, decoded_).copy_(bytes.view({-1}));
  const int64_t next = ++decoded_, k = next / P, p = next % P;
  for (auto& c : local_caches_) c.len = p + 1;
  if (p == 0) {  // patch k-1 is complete: a global step for patch k
    k_.fill_(k);
    for (auto& c : global_caches_) c.len = k + 1;
    return static_span(k + 1, cfg_.context / P);
  }
  in_byte_.copy_(bytes.view({-1}));
  p_.fill_(p);
  return 0;
}

void MegabyteImpl::static_compute(int64_t key) {
  const int64_t B = history_.size(0), P = cfg_.patch_size, DG = cfg_.global_byte_width();
  if (key == 0) {
    auto x = patch_ctx_.index_select(1, p_.view({1})) + local_embed(in_byte_).unsqueeze(1);  // (B, 1, D_L)
    static_logits_.copy_(project(head, local_model->step(x, p_, P, local_caches_)).select(1, 0));
    return;
  }
  auto idx = (k_ - 1) * P + patch_offsets_;                                                   // (P)
  auto emb = global_embed(history_.index_select(1, idx)) + global_pos->weight.index_select(0, idx);  // (B, P, D_G)
  auto g = global_model->step(emb.reshape({B, 1, P * DG}), k_, key, global_caches_);           // (B, 1, P*D_G)
  patch_ctx_.copy_(global_to_local(g.view({B, P, DG})));
  auto x = patch_ctx_.narrow(1, 0, 1) + local_pad;                                            // (B, 1, D_L)
  static_logits_.copy_(project(head, local_model->step(x, zero_, P, local_caches_)).select(1, 0));
}

std::vector<FlopsPart> MegabyteImpl::flops() const {
  const double P = double(cfg_.patch_size), K = double(cfg_.context / cfg_.patch_size);
  const double DG = double(cfg_.global_byte_width()), DL = double(cfg_.local.width);
  auto count = [](const torch::nn::Module& m, bool matmul_only) {
    int64_t n = 0;
    for (auto& p : m.parameters())
      if (!matmul_only || p.dim() >= 2) n += p.numel();
    return n;
  };
  FlopsPart g, l;
  g.name = "global";
  g.matmul_params = count(*global_model, true);
  g.params = count(*global_model, false) + global_embed->weight.numel() + global_pos->weight.numel() + global_pad.numel();
  g.matmul_flops = stack_matmul_flops(cfg_.global) / P;  // the global model runs once per patch
  g.attention_flops = stack_attention_flops(cfg_.global, K) / P;
  l.name = "local";
  l.matmul_params = count(*local_model, true) + global_to_local->weight.numel() + head->weight.numel();
  l.params = count(*local_model, false) + global_to_local->weight.numel() + head->weight.numel() +
             local_embed->weight.numel() + local_pad.numel();
  l.matmul_flops = stack_matmul_flops(cfg_.local) + 2.0 * DG * DL + 2.0 * DL * kByteVocab;
  l.attention_flops = stack_attention_flops(cfg_.local, P);
  return {g, l};
}

}  // namespace bytelm
