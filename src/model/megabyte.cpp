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
  // With middle levels global_to_local reads a slice (W / S) of the last middle level's output.
  const int64_t slice = cfg.levels.empty() ? DG : cfg.levels.back().stack.width / cfg.levels.back().patch_size;
  global_to_local =
      register_module("global_to_local", torch::nn::Linear(torch::nn::LinearOptions(slice, DL).bias(false)));
  local_embed = register_module("local_embed", torch::nn::Embedding(kByteVocab, DL));
  local_pad = register_parameter("local_pad", torch::zeros({DL}));
  local_model = register_module("local_model", Stack(cfg.local, cfg.norm_eps));
  head = register_module("head", torch::nn::Linear(torch::nn::LinearOptions(DL, kByteVocab).bias(false)));
  if (!cfg.conv_kernels.empty()) conv = register_module("conv", CausalConvEncoder(DG, cfg.conv_kernels));
  if (!cfg.levels.empty()) {
    auto list = register_module("levels", torch::nn::ModuleList());
    int64_t above = P, above_width = cfg.global.width;
    for (const auto& l : cfg.levels) {
      levels.push_back(MegabyteLevel(l, above_width, above / l.patch_size, cfg.norm_eps));
      list->push_back(levels.back());
      above = l.patch_size;
      above_width = l.stack.width;
    }
  }

  torch::NoGradGuard no_grad;
  for (auto* m : std::initializer_list<torch::nn::Module*>{global_embed.get(), global_pos.get(), global_to_local.get(),
                                                           local_embed.get(), head.get()})
    init_weights(*m, cfg.init_std, 1);
  init_weights(*global_model, cfg.init_std, cfg.global.layers);
  init_weights(*local_model, cfg.init_std, cfg.local.layers);
  global_pad.normal_(0.0, cfg.init_std);
  local_pad.normal_(0.0, cfg.init_std);
  if (conv) init_weights(*conv, cfg.init_std, 1);
  for (auto& l : levels) {
    init_weights(*l->from_above, cfg.init_std, 1);
    init_weights(*l->embed, cfg.init_std, 1);
    init_weights(*l->model, cfg.init_std, l->cfg.stack.layers);
    l->pad.normal_(0.0, cfg.init_std);
  }
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
  if (conv) h = conv(h);  // causal: byte t still sees only bytes <= t
  h = h.reshape({B, K, P * DG});
  auto patches = torch::cat({global_pad.view({1, 1, P * DG}).expand({B, 1, P * DG}), h.narrow(1, 0, K - 1)}, 1);
  auto upper = global_model(patches);  // (B, K, P*D_G)

  // Middle levels: level i runs over units of S bytes inside each unit (group) of the level above.
  int64_t above = P;
  for (auto& l : levels) {
    const int64_t S = l->cfg.patch_size, W = l->cfg.stack.width, G = Tp / above, n = above / S;
    auto units = l->embed(x).view({B, G, n, W});  // (B, G, n, W): unit embeddings (S bytes each)
    auto in = lower_level_inputs(l->from_above, upper, units, l->pad);
    upper = l->model(in.view({B * G, n, W})).view({B, G * n, W});
    above = S;
  }

  // Local input at position p of group g: projected slice p + embedding of the byte before (pad at p=0).
  const int64_t G = Tp / above;
  auto in = lower_level_inputs(global_to_local, upper, local_embed(x).view({B, G, above, DL}), local_pad);
  auto y = local_forward(in);  // (B*G, n, D_L)
  auto logits = head(y).view({B, Tp, kByteVocab});
  return Tp == T ? logits : logits.narrow(1, 0, T);  // (B, T, 256)
}

torch::Tensor MegabyteImpl::local_forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), G = x.size(1), n = x.size(2), DL = x.size(3);
  if (cfg_.cross_patch > 0) return cross_patch_forward(*local_model, x, cfg_.cross_patch);
  return local_model(x.view({B * G, n, DL}));
}

double MegabyteImpl::activation_floats_per_byte() const {
  // Logits; global: K = T/P positions of width P*D_G; local: every byte, width D_L.
  return 3.0 * double(kByteVocab) + stack_activation_floats(cfg_.global, 1.0 / double(cfg_.patch_size)) +
         stack_activation_floats(cfg_.local, 1.0);
}

std::vector<FlopsPart> MegabyteImpl::flops() const {
  // Per byte, one forward pass: a level over units of S bytes runs once per S bytes (the paper's accounting).
  const double P = double(cfg_.patch_size), K = double(cfg_.context / cfg_.patch_size), DL = double(cfg_.local.width);
  auto count = [](const torch::nn::Module& m, bool matmul_only) {
    int64_t n = 0;
    for (auto& p : m.parameters())
      if (!matmul_only || p.dim() >= 2) n += p.numel();
    return n;
  };
  std::vector<FlopsPart> parts(1);
  FlopsPart& g = parts[0];
  g.name = "global";
  g.matmul_params = count(*global_model, true);
  g.params =
      count(*global_model, false) + global_embed->weight.numel() + global_pos->weight.numel() + global_pad.numel();
  g.matmul_flops = stack_matmul_flops(cfg_.global) / P;  // the global model runs once per patch
  g.attention_flops = stack_attention_flops(cfg_.global, K) / P;
  if (conv) {  // the conv encoder runs on every byte's embedding
    g.matmul_params += count(*conv, true);
    g.params += count(*conv, false);
    g.matmul_flops += conv->flops_per_byte();
  }
  double above = P;
  for (size_t i = 0; i < levels.size(); ++i) {
    const auto& l = *levels[i];
    const double S = double(l.cfg.patch_size);
    FlopsPart m;
    m.name = "level" + std::to_string(i + 1);
    m.matmul_params = count(*l.model, true) + l.from_above->weight.numel();
    m.params = count(l, false);
    m.matmul_flops = (stack_matmul_flops(l.cfg.stack) + 2.0 * double(l.from_above->weight.numel())) / S;  // per unit
    m.attention_flops = stack_attention_flops(l.cfg.stack, above / S) / S;
    parts.push_back(m);
    above = S;
  }
  FlopsPart lo;
  lo.name = "local";
  lo.matmul_params = count(*local_model, true) + global_to_local->weight.numel() + head->weight.numel();
  lo.params = count(*local_model, false) + global_to_local->weight.numel() + head->weight.numel() +
              local_embed->weight.numel() + local_pad.numel();
  lo.matmul_flops =
      stack_matmul_flops(cfg_.local) + 2.0 * double(global_to_local->weight.numel()) + 2.0 * DL * kByteVocab;
  // Cross-patch attention: each byte also attends to the r borrowed keys.
  lo.attention_flops = stack_attention_flops(cfg_.local, above + double(cfg_.cross_patch));
  parts.push_back(lo);
  return parts;
}

}  // namespace bytelm
