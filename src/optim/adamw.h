// adamw.h — AdamW with per-parameter decay rules, its state as named tensors (for checkpoints), and
// gradient clipping without a host-device synchronisation.
// The update runs as multi-tensor ops (one _foreach_ call per stage over all parameters of a decay
// group) or, on CUDA, as ATen's fused AdamW kernel (at::_fused_adamw_); step_reference() is the plain
// per-parameter loop both are tested against.
#pragma once
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "model/checkpoint.h"

namespace bytelm {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.95, adam_eps = 1e-8, weight_decay = 0.1;
};

// Scales the gradients so their global L2 norm is at most max_norm (max_norm <= 0: no scaling) and
// returns the norm before scaling as a 0-dim fp32 tensor on the device — no .item(), so no host-device
// synchronisation. Same arithmetic as torch.nn.utils.clip_grad_norm_ (coefficient max / (norm + 1e-6),
// clamped to 1).
inline torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return torch::zeros({});
  auto norms = at::_foreach_norm(grads, 2);
  auto total = torch::stack(norms).to(torch::kFloat32).norm();
  if (max_norm <= 0) return total;
  auto coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
  at::_foreach_mul_(grads, coef);
  return total;
}

// The weight decay a parameter gets: none for norms, embeddings, pads and every 1-D parameter.
inline double adamw_decay_of(const std::string& name, const torch::Tensor& p, const AdamWOptions& o) {
  bool no_decay = p.dim() < 2 || name.find("embed") != std::string::npos || name.find("_pos") != std::string::npos ||
                  name.find("_pad") != std::string::npos;
  return no_decay ? 0.0 : o.weight_decay;
}

// The parameter groups of one update: each distinct (weight decay, learning-rate multiplier) pair, decay 0
// first, multipliers in increasing order (with every multiplier 1: the two decay groups alone).
inline std::vector<std::pair<double, double>> adamw_groups(const std::vector<double>& decays,
                                                           const std::vector<double>& lr_scales) {
  std::vector<std::pair<double, double>> groups;
  for (size_t i = 0; i < decays.size(); ++i) groups.emplace_back(decays[i], lr_scales.empty() ? 1.0 : lr_scales[i]);
  std::sort(groups.begin(), groups.end());
  groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
  return groups;
}

// One AdamW update at step t (counted from 1) of lists of parameters, gradients and moments that share one
// weight decay, stage by stage as multi-tensor ops (PyTorch's multi-tensor AdamW). The tensors may be
// slices of parameters (ZeRO-1, src/distributed/zero_adamw.h): the arithmetic is elementwise.
inline void adamw_foreach_update(std::vector<torch::Tensor>& p, std::vector<torch::Tensor>& g,
                                 std::vector<torch::Tensor>& m, std::vector<torch::Tensor>& v, double lr, double decay,
                                 const AdamWOptions& o, int64_t t) {
  const double bias1 = 1 - std::pow(o.beta1, double(t)), bias2 = 1 - std::pow(o.beta2, double(t));
  if (decay > 0) at::_foreach_mul_(p, 1 - lr * decay);
  at::_foreach_mul_(m, o.beta1);
  at::_foreach_add_(m, g, 1 - o.beta1);
  at::_foreach_mul_(v, o.beta2);
  at::_foreach_addcmul_(v, g, g, 1 - o.beta2);
  auto denom = at::_foreach_sqrt(v);
  at::_foreach_div_(denom, std::sqrt(bias2));
  at::_foreach_add_(denom, o.adam_eps);
  at::_foreach_addcdiv_(p, m, denom, -lr / bias1);
}

// AdamW as in PyTorch (decoupled weight decay, bias-corrected moments). Parameters whose names mark
// norms, embeddings or pads, and every 1-D parameter, get no weight decay. lr_scales (empty: all 1), one per
// parameter: its learning rate is lr x scale (PyTorch's parameter groups; the decay step scales with it).
class AdamW {
 public:
  enum class Impl { Auto, ForEach, Reference };

  AdamW(const NamedTensors& params, const AdamWOptions& o, const std::vector<double>& lr_scales = {}) : o_(o) {
    for (size_t i = 0; i < params.size(); ++i) {
      const auto& [name, p] = params[i];
      const double scale = lr_scales.empty() ? 1.0 : lr_scales.at(i);
      slots_.push_back({name, p, torch::zeros_like(p), torch::zeros_like(p), adamw_decay_of(name, p, o), scale, {}});
    }
  }

  // One update with learning rate lr, from the parameters' .grad() (parameters without one are skipped).
  void step(double lr, Impl impl = Impl::Auto) {
    torch::NoGradGuard no_grad;
    ++t_;
    if (impl == Impl::Reference) return step_reference(lr);
    // One group per (weight decay, learning-rate multiplier) pair.
    std::vector<double> decays, scales;
    for (const auto& s : slots_) {
      decays.push_back(s.decay);
      scales.push_back(s.lr_scale);
    }
    for (const auto& [decay, scale] : adamw_groups(decays, scales)) {
      std::vector<Slot*> group;
      for (auto& s : slots_)
        if (s.decay == decay && s.lr_scale == scale && s.param.grad().defined()) group.push_back(&s);
      if (group.empty()) continue;
      if (impl == Impl::Auto && group.front()->param.is_cuda()) {
        fused_step(group, lr * scale, decay);
        continue;
      }
      foreach_step(group, lr * scale, decay);
    }
  }

  // The end of a training step: clips the gradients to max_norm (<= 0: no clipping), updates, drops the
  // gradients. Returns the norm before clipping as a device tensor (see clip_grad_norm).
  torch::Tensor clip_step_and_clear(double lr, double max_norm) {
    std::vector<torch::Tensor> params;
    for (const auto& s : slots_) params.push_back(s.param);
    auto norm = clip_grad_norm(params, max_norm);
    step(lr);
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
    return norm;
  }

  NamedTensors state() const {
    NamedTensors out;
    for (const auto& s : slots_) {
      out.emplace_back("exp_avg." + s.name, s.m);
      out.emplace_back("exp_avg_sq." + s.name, s.v);
    }
    return out;
  }
  int64_t t() const { return t_; }
  void set_t(int64_t t) { t_ = t; }

 private:
  struct Slot {
    std::string name;
    torch::Tensor param, m, v;
    double decay, lr_scale;
    torch::Tensor step;  // fused kernel only: the step count as a float tensor on the device
  };

  double bias1() const { return 1 - std::pow(o_.beta1, double(t_)); }
  double bias2() const { return 1 - std::pow(o_.beta2, double(t_)); }

  void step_reference(double base_lr) {
    for (auto& s : slots_) {
      auto g = s.param.grad();
      if (!g.defined()) continue;
      const double lr = base_lr * s.lr_scale;
      if (s.decay > 0) s.param.mul_(1 - lr * s.decay);
      s.m.mul_(o_.beta1).add_(g, 1 - o_.beta1);
      s.v.mul_(o_.beta2).addcmul_(g, g, 1 - o_.beta2);
      auto denom = (s.v.sqrt() / std::sqrt(bias2())).add_(o_.adam_eps);
      s.param.addcdiv_(s.m, denom, -lr / bias1());
    }
  }

  // A group's parameters, gradients and moments as lists for the multi-tensor ops.
  struct Lists {
    std::vector<torch::Tensor> p, g, m, v;
  };
  static Lists lists_of(const std::vector<Slot*>& group) {
    Lists l;
    for (const Slot* s : group) {
      l.p.push_back(s->param);
      l.g.push_back(s->param.grad());
      l.m.push_back(s->m);
      l.v.push_back(s->v);
    }
    return l;
  }

  // The same arithmetic, stage by stage over a whole group (PyTorch's multi-tensor AdamW).
  void foreach_step(const std::vector<Slot*>& group, double lr, double decay) {
    Lists l = lists_of(group);
    adamw_foreach_update(l.p, l.g, l.m, l.v, lr, decay, o_, t_);
  }

  // ATen's fused AdamW: one kernel launch per group; bias corrections from per-parameter step tensors.
  void fused_step(const std::vector<Slot*>& group, double lr, double decay) {
    Lists l = lists_of(group);
    std::vector<torch::Tensor> steps;
    for (Slot* s : group) {
      if (!s->step.defined()) s->step = torch::zeros({}, s->param.options().dtype(torch::kFloat32));
      s->step.fill_(double(t_));  // a device-side fill, no synchronisation; also right after a resume
      steps.push_back(s->step);
    }
    at::_fused_adamw_(l.p, l.g, l.m, l.v, /*max_exp_avg_sqs=*/{}, steps, lr, o_.beta1, o_.beta2, decay, o_.adam_eps,
                      /*amsgrad=*/false, /*maximize=*/false);
  }

  AdamWOptions o_;
  std::vector<Slot> slots_;
  int64_t t_ = 0;
};

}  // namespace bytelm
