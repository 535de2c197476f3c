// hnet.cpp — H-Net's modules, its training forward (routing, chunk selection, smoothing, the straight-through
// estimator, the ratio loss), FLOPs at the realised chunk ratios and the model hooks. Decoding: hnet_decode.cpp.
#include "model/hnet.h"

#include <c10/core/impl/LocalDispatchKeySet.h>

#include <cmath>
#include <cstdio>
#include <numeric>

#include "model/module_util.h"
#include "util/error.h"

namespace bytelm {

namespace F = torch::nn::functional;

HnetStageImpl::HnetStageImpl(const HnetStageConfig& cfg, int64_t inner_width_, double eps)
    : width(cfg.encoder.width), inner_width(inner_width_), target_ratio(cfg.target_ratio) {
  encoder = register_module("encoder", Stack(cfg.encoder, eps));
  decoder = register_module("decoder", Stack(cfg.decoder, eps));
  q_proj = register_module("q_proj", linear(width, width));
  k_proj = register_module("k_proj", linear(width, width));
  residual_proj = register_module("residual_proj", torch::nn::Linear(width, width));
  if (inner_width > width) pad = register_parameter("pad", torch::zeros({inner_width - width}));
}

HnetImpl::HnetImpl(const ModelConfig& cfg) : LanguageModelImpl(cfg) {
  const auto& st = cfg.stages;
  embed = register_module("embed", torch::nn::Embedding(kByteVocab + 1, st.front().encoder.width));
  stages = register_module("stages", torch::nn::ModuleList());
  for (size_t s = 0; s < st.size(); ++s) {
    const int64_t inner = s + 1 < st.size() ? st[s + 1].encoder.width : cfg.global.width;
    stages->push_back(HnetStage(st[s], inner, cfg.norm_eps));
  }
  main = register_module("main", Stack(cfg.global, cfg.norm_eps));
  head = register_module("head", linear(st.front().encoder.width, kByteVocab));
  int64_t layers = cfg.global.layers;
  for (const auto& s : st) layers += s.encoder.layers + s.decoder.layers;
  init_weights(*this, cfg.init_std, layers);
  torch::NoGradGuard no_grad;
  // The paper's initialisation: byte embeddings N(0, 1) (with std 0.02 the residual stream starts nearly the
  // same at every position, the cosines near 1 and almost no boundaries), routing at the identity, the
  // residual projection at zero.
  embed->weight.normal_(0.0, 1.0);
  for (size_t s = 0; s < st.size(); ++s) {
    auto& stage_s = *stages[s]->as<HnetStageImpl>();
    stage_s.q_proj->weight.copy_(torch::eye(stage_s.width));
    stage_s.k_proj->weight.copy_(torch::eye(stage_s.width));
    stage_s.residual_proj->weight.zero_();
    stage_s.residual_proj->bias.zero_();
  }
  std::vector<double> targets;
  for (const auto& s : st) targets.push_back(s.target_ratio);
  set_ratios(targets);
  seen_.assign(st.size(), 0);
  kept_ = last_seen_ = last_kept_ = seen_;
}

// ---- Routing, smoothing, the ratio loss

Routing HnetImpl::route(int64_t s, const torch::Tensor& encoded, const torch::Tensor& valid) {
  // Cosines, p and the threshold stay in fp32 whatever autocast does: a hard threshold flips with rounding.
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  auto& st = stage(s);
  auto e = encoded.to(torch::kFloat32);  // (B, L, D)
  const int64_t B = e.size(0), L = e.size(1);
  auto p = torch::ones({B, 1}, e.options());  // a sequence starts a chunk
  if (L > 1) {
    // As in the reference code: the previous position through W_q, the current one through W_k.
    auto q = F::linear(e.narrow(1, 0, L - 1), st.q_proj->weight.to(torch::kFloat32));
    auto k = F::linear(e.narrow(1, 1, L - 1), st.k_proj->weight.to(torch::kFloat32));
    auto cos = F::cosine_similarity(q, k, F::CosineSimilarityFuncOptions().dim(2));  // (B, L-1)
    p = torch::cat({p, ((1 - cos) / 2).clamp(0, 1)}, 1);
  }
  auto boundary = p > 0.5;
  if (valid.defined()) boundary = boundary.logical_and(valid);
  return {p, boundary};
}

torch::Tensor HnetImpl::ratio_loss(const torch::Tensor& boundary_mean, const torch::Tensor& p_mean, double N) {
  auto F_ = boundary_mean.detach();
  return N / (N - 1) * ((N - 1) * F_ * p_mean + (1 - F_) * (1 - p_mean));
}

torch::Tensor HnetImpl::straight_through(const torch::Tensor& p, const torch::Tensor& boundary) {
  auto c = torch::where(boundary, p, 1 - p);
  return c + (1 - c).detach();
}

torch::Tensor HnetImpl::smooth(const torch::Tensor& chunks, const torch::Tensor& P) {
  // The plain recurrence (the paper runs it through the Mamba-2 scan kernel); decoding repeats it step by step.
  const int64_t K = chunks.size(1);
  auto prev = torch::zeros({chunks.size(0), chunks.size(2)}, chunks.options());  // (B, D)
  std::vector<torch::Tensor> out;
  out.reserve(size_t(K));
  for (int64_t c = 0; c < K; ++c) {
    auto w = P.select(1, c).unsqueeze(1);  // (B, 1)
    prev = w * chunks.select(1, c) + (1 - w) * prev;
    out.push_back(prev);
  }
  return torch::stack(out, 1);  // (B, K, D)
}

// ---- Training forward

torch::Tensor HnetImpl::forward(const torch::Tensor& bytes) {
  const int64_t B = bytes.size(0), T = bytes.size(1);
  auto start_id = torch::full({B, 1}, kStartId, bytes.options());
  auto in = torch::cat({start_id, bytes.narrow(1, 0, T - 1)}, 1);  // (B, T)
  aux_loss_ = torch::Tensor();
  recorded_.clear();
  return head(run_stage(0, embed(in), torch::Tensor()));  // (B, T, 256)
}

void HnetImpl::count_chunks(int64_t s, const torch::Tensor& valid, const torch::Tensor& boundary) {
  last_seen_[size_t(s)] = valid.defined() ? valid.sum().item<double>() : double(boundary.numel());
  last_kept_[size_t(s)] = boundary.sum().item<double>();
  if (!is_training()) return;
  seen_[size_t(s)] += last_seen_[size_t(s)];
  kept_[size_t(s)] += last_kept_[size_t(s)];
}

torch::Tensor HnetImpl::run_stage(int64_t s, const torch::Tensor& x, const torch::Tensor& lengths) {
  auto& st = stage(s);
  const int64_t B = x.size(0), L = x.size(1), D = st.width;
  auto encoded = st.encoder(x);  // (B, L, D)
  torch::Tensor valid;           // (B, L) bool; undefined: every position
  if (lengths.defined()) valid = torch::arange(L, lengths.options()).unsqueeze(0) < lengths.unsqueeze(1);
  Routing r = route(s, encoded, valid);
  count_chunks(s, valid, r.boundary);
  if (torch::GradMode::is_enabled() && is_training() && cfg_.ratio_loss_weight > 0) {
    auto mask = valid.defined() ? valid.to(torch::kFloat32) : torch::ones_like(r.p);
    auto n = mask.sum();
    auto loss = ratio_loss(r.boundary.to(torch::kFloat32).sum() / n, (r.p * mask).sum() / n, st.target_ratio);
    aux_loss_ = aux_loss_.defined() ? aux_loss_ + cfg_.ratio_loss_weight * loss : cfg_.ratio_loss_weight * loss;
  }
  // Selection: each row's chunk starts first, in order (sort t + L * [not a start]), the first K of them.
  auto counts = r.boundary.sum(1);  // (B)
  const int64_t K = counts.max().item<int64_t>();
  auto key = torch::arange(L, counts.options()).unsqueeze(0) + L * r.boundary.logical_not().to(torch::kLong);
  auto index = std::get<1>(key.sort(1)).narrow(1, 0, K);  // (B, K)
  if (record_) {
    auto row = index[0].narrow(0, 0, counts[0].item<int64_t>()).to(torch::kCPU).contiguous();
    recorded_.emplace_back(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
  }
  auto chunks = encoded.gather(1, index.unsqueeze(2).expand({B, K, D}));  // (B, K, D_s)
  if (st.pad.defined())  // into the next width: a learned pad vector appended (no projection)
    chunks = torch::cat({chunks, st.pad.to(chunks.scalar_type()).expand({B, K, st.pad.size(0)})}, 2);
  auto inner = run_inner(s, chunks, counts).narrow(2, 0, D);  // (B, K, D_s): the first D_s dims come back
  auto P = r.p.gather(1, index).clamp(1e-4, 1 - 1e-4);        // (B, K)
  auto smoothed = smooth(inner.to(torch::kFloat32), P);       // (B, K, D_s)
  auto chunk_of = r.boundary.to(torch::kLong).cumsum(1) - 1;  // (B, L): each position's chunk
  auto up = smoothed.gather(1, chunk_of.clamp_min(0).unsqueeze(2).expand({B, L, D}));
  auto z = up * straight_through(r.p, r.boundary).unsqueeze(2) +
           st.residual_proj(encoded.to(torch::kFloat32));  // (B, L, D_s)
  return st.decoder(z.to(encoded.scalar_type()));
}

torch::Tensor HnetImpl::run_inner(int64_t s, const torch::Tensor& chunks, const torch::Tensor& counts) {
  if (s + 1 < int64_t(stages->size())) return run_stage(s + 1, chunks, counts);
  return main(chunks);  // positions are chunk indices; a row's padding chunks come after its own (causal)
}

// ---- Hooks

void HnetImpl::set_ratios(const std::vector<double>& ratios) { ratios_ = ratios; }

double HnetImpl::counted_patch_size() const {
  return std::accumulate(ratios_.begin(), ratios_.end(), 1.0, std::multiplies<double>());
}

void HnetImpl::set_counted_patch_size(double bytes) {
  // One number for every stage: each stage's ratio scaled by the same factor (exact for one stage).
  const double factor = std::pow(bytes / counted_patch_size(), 1.0 / double(ratios_.size()));
  std::vector<double> r;
  for (double x : ratios_) r.push_back(x * factor);
  set_ratios(r);
}

double HnetImpl::count_patches_of(const torch::Tensor& bytes) {
  torch::NoGradGuard no_grad;
  const bool was_training = is_training();
  eval();
  forward(bytes);
  train(was_training);
  std::vector<double> r;
  for (size_t s = 0; s < ratios_.size(); ++s) r.push_back(last_seen_[s] / std::max(1.0, last_kept_[s]));
  set_ratios(r);
  return counted_patch_size();
}

double HnetImpl::take_training_patches() {
  if (seen_.empty() || seen_[0] == 0) return NAN;
  std::vector<double> r;
  for (size_t s = 0; s < ratios_.size(); ++s) r.push_back(seen_[s] / std::max(1.0, kept_[s]));
  std::fill(seen_.begin(), seen_.end(), 0.0);
  std::fill(kept_.begin(), kept_.end(), 0.0);
  set_ratios(r);
  return counted_patch_size();
}

// The collapse guard: a stage that keeps (nearly) every position runs its inner network at its own rate;
// one that keeps almost none starves it. Either way the ratio loss has lost (paper §2.3; a known failure).
std::string HnetImpl::patching_warning() const {
  char line[256];
  for (size_t s = 0; s < ratios_.size(); ++s) {
    const double target = cfg_.stages[s].target_ratio;
    if (ratios_[s] < 1.1)
      std::snprintf(line, sizeof line,
                    "stage %zu boundaries collapsed: a chunk every %.2f positions (target %.1f); the main network "
                    "runs at almost byte level (raise ratio_loss_weight or lower --lr)",
                    s, ratios_[s], target);
    else if (ratios_[s] > 3 * target)
      std::snprintf(line, sizeof line,
                    "stage %zu boundaries collapsed: a chunk every %.1f positions (target %.1f); the main network "
                    "sees almost nothing (raise ratio_loss_weight)",
                    s, ratios_[s], target);
    else
      continue;
    return line;
  }
  return "";
}

std::string HnetImpl::describe_patches() const {
  std::string stagewise;
  char part[64];
  for (size_t s = 0; s < ratios_.size(); ++s) {
    std::snprintf(part, sizeof part, "%sstage %zu %.2f (target %.1f)", s ? ", " : "", s, ratios_[s],
                  cfg_.stages[s].target_ratio);
    stagewise += part;
  }
  char line[256];
  std::snprintf(line, sizeof line, "learned chunks, %.2f bytes per chunk (%s)", counted_patch_size(),
                stagewise.c_str());
  return line;
}

torch::Tensor HnetImpl::auxiliary_loss() {
  auto loss = aux_loss_;
  aux_loss_ = torch::Tensor();
  return loss;
}

double HnetImpl::lr_multiplier(const std::string& parameter) const {
  if (parameter.rfind("main.", 0) == 0) return cfg_.main_lr_multiplier;
  if (parameter.rfind("stages.", 0) == 0) {
    const size_t s = std::stoul(parameter.substr(7));
    if (s < cfg_.stages.size()) return cfg_.stages[s].lr_multiplier;
  }
  return cfg_.stages.front().lr_multiplier;  // embedding and head: the outer stage's (the paper's rule)
}

std::vector<std::vector<int64_t>> HnetImpl::chunk_starts(const torch::Tensor& bytes) {
  torch::NoGradGuard no_grad;
  record_ = true;
  try {
    forward(bytes.narrow(0, 0, 1));
  } catch (...) {
    record_ = false;
    throw;
  }
  record_ = false;
  // recorded_[s]: stage s's chunk starts as positions of that stage; map them down to input positions
  // (input position t holds the start id for t = 0, else byte t - 1) and then to bytes.
  std::vector<std::vector<int64_t>> out;
  std::vector<int64_t> positions;  // input positions of the current stage's positions
  for (size_t s = 0; s < recorded_.size(); ++s) {
    std::vector<int64_t> starts, next;
    for (int64_t i : recorded_[s]) {
      const int64_t input = s == 0 ? i : positions[size_t(i)];
      next.push_back(input);
      const int64_t byte = std::max<int64_t>(0, input - 1);
      if (starts.empty() || starts.back() != byte) starts.push_back(byte);
    }
    positions = next;
    out.push_back(starts);
  }
  return out;
}

// ---- FLOPs (paper §11: each stage at its own rate of positions per byte, measured)

std::vector<FlopsPart> HnetImpl::flops() const {
  std::vector<FlopsPart> parts;
  const double T = double(cfg_.context);
  double rate = 1.0;  // positions of the current stage per byte
  for (size_t s = 0; s < cfg_.stages.size(); ++s) {
    const auto& sc = cfg_.stages[s];
    const auto& st = *stages->ptr(s)->as<HnetStageImpl>();
    const double w = double(st.width);
    FlopsPart p;
    p.name = "stage" + std::to_string(s);
    p.params = count_params(st, false);
    p.matmul_params = count_params(st, true);
    p.matmul_flops = rate * (stack_matmul_flops(sc.encoder) + stack_matmul_flops(sc.decoder) + 2.0 * 3 * w * w);
    p.attention_flops =
        rate * (stack_attention_flops(sc.encoder, T * rate) + stack_attention_flops(sc.decoder, T * rate));
    if (s == 0) {  // the byte embedding and the head belong to the outer stage
      p.params += embed->weight.numel() + head->weight.numel();
      p.matmul_params += head->weight.numel();
      p.matmul_flops += 2.0 * double(head->weight.numel());
    }
    parts.push_back(p);
    rate /= ratios_[s];
  }
  FlopsPart m;
  m.name = "main";
  m.params = count_params(*main, false);
  m.matmul_params = count_params(*main, true);
  m.matmul_flops = rate * stack_matmul_flops(cfg_.global);
  m.attention_flops = rate * stack_attention_flops(cfg_.global, T * rate);
  parts.push_back(m);
  return parts;
}

double HnetImpl::activation_floats_per_byte() const {
  double rate = 1.0, floats = 3.0 * double(kByteVocab);
  for (size_t s = 0; s < cfg_.stages.size(); ++s) {
    const auto& sc = cfg_.stages[s];
    // Both stacks, plus routing, smoothing and the residual (about 8 vectors of the stage's width).
    floats += stack_activation_floats(sc.encoder, rate) + stack_activation_floats(sc.decoder, rate) +
              8.0 * double(sc.encoder.width) * rate;
    rate /= ratios_[s];
  }
  return floats + stack_activation_floats(cfg_.global, rate);
}

}  // namespace bytelm
