// adamw.h — AdamW with per-parameter decay rules, and its state as named tensors (for checkpoints).
#pragma once
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

#include "model/checkpoint.h"

namespace bytelm {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.95, adam_eps = 1e-8, weight_decay = 0.1;
};

// AdamW as in PyTorch (decoupled weight decay, bias-corrected moments). Parameters whose names mark
// norms, embeddings or pads, and every 1-D parameter, get no weight decay.
class AdamW {
 public:
  AdamW(const NamedTensors& params, const AdamWOptions& o) : o_(o) {
    for (const auto& [name, p] : params) {
      bool no_decay = p.dim() < 2 || name.find("embed") != std::string::npos ||
                      name.find("_pos") != std::string::npos || name.find("_pad") != std::string::npos;
      slots_.push_back({name, p, torch::zeros_like(p), torch::zeros_like(p), no_decay ? 0.0 : o.weight_decay});
    }
  }
  void step(double lr) {
    torch::NoGradGuard no_grad;
    ++t_;
    const double bc1 = 1 - std::pow(o_.beta1, double(t_)), bc2 = 1 - std::pow(o_.beta2, double(t_));
    for (auto& s : slots_) {
      auto g = s.param.grad();
      if (!g.defined()) continue;
      if (s.decay > 0) s.param.mul_(1 - lr * s.decay);
      s.m.mul_(o_.beta1).add_(g, 1 - o_.beta1);
      s.v.mul_(o_.beta2).addcmul_(g, g, 1 - o_.beta2);
      auto denom = (s.v.sqrt() / std::sqrt(bc2)).add_(o_.adam_eps);
      s.param.addcdiv_(s.m, denom, -lr / bc1);
    }
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
    double decay;
  };
  AdamWOptions o_;
  std::vector<Slot> slots_;
  int64_t t_ = 0;
};

}  // namespace bytelm
