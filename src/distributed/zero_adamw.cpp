// zero_adamw.cpp — see zero_adamw.h.
#include "distributed/zero_adamw.h"

#include <algorithm>

namespace bytelm {

ZeroAdamW::ZeroAdamW(const NamedTensors& params, const AdamWOptions& o, ProcessGroup& group,
                     const std::vector<double>& lr_scales)
    : params_(params), o_(o), group_(group), opts_(torch::TensorOptions(torch::kFloat32).device(group.device())) {
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    offsets_.push_back(n_);
    decays_.push_back(adamw_decay_of(name, p, o));
    scales_.push_back(lr_scales.empty() ? 1.0 : lr_scales.at(i));
    n_ += p.numel();
  }
  const int64_t w = group.size();
  shard_ = (n_ + w - 1) / w;
  lo_ = std::min(n_, group.rank() * shard_);
  hi_ = std::min(n_, lo_ + shard_);
  for (size_t i = 0; i < params_.size(); ++i) {
    const int64_t a = std::max(lo_, offsets_[i]), b = std::min(hi_, offsets_[i] + params_[i].second.numel());
    if (a < b)
      chunks_.push_back({i, a - offsets_[i], b - a, torch::zeros({b - a}, opts_), torch::zeros({b - a}, opts_)});
  }
}

torch::Tensor ZeroAdamW::pack(const std::function<torch::Tensor(const Chunk&)>& part) const {
  auto flat = torch::zeros({shard_}, opts_);
  int64_t off = 0;
  for (const auto& c : chunks_) {
    flat.narrow(0, off, c.len).copy_(part(c));
    off += c.len;
  }
  return flat;
}

torch::Tensor ZeroAdamW::gather(torch::Tensor mine) {
  auto all = torch::empty({group_.size() * shard_}, opts_);
  std::vector<torch::Tensor> out;
  for (int r = 0; r < group_.size(); ++r) out.push_back(all.narrow(0, r * shard_, shard_));
  group_.allgather(out, mine);
  return all;
}

torch::Tensor ZeroAdamW::clip_step_and_clear(double lr, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> all;
  for (const auto& np : params_) all.push_back(np.second);
  auto norm = clip_grad_norm(all, max_norm);
  ++t_;
  // The same groups as AdamW::step, over this rank's slices.
  for (const auto& [decay, scale] : adamw_groups(decays_, scales_)) {
    std::vector<torch::Tensor> p, g, m, v;
    for (auto& c : chunks_) {
      const torch::Tensor& param = params_[c.slot].second;
      if (decays_[c.slot] != decay || scales_[c.slot] != scale || !param.grad().defined()) continue;
      p.push_back(param.detach().view({-1}).narrow(0, c.begin, c.len));
      g.push_back(param.grad().reshape({-1}).narrow(0, c.begin, c.len));
      m.push_back(c.m);
      v.push_back(c.v);
    }
    if (!p.empty()) adamw_foreach_update(p, g, m, v, lr * scale, decay, o_, t_);
  }
  // Every rank's updated range, then each parameter from the whole.
  auto flat = gather(
      pack([&](const Chunk& c) { return params_[c.slot].second.detach().view({-1}).narrow(0, c.begin, c.len); }));
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i].second;
    p.detach().copy_(flat.narrow(0, offsets_[i], p.numel()).view(p.sizes()));
    p.mutable_grad() = torch::Tensor();
  }
  return norm;
}

NamedTensors ZeroAdamW::gather_state() {
  torch::NoGradGuard no_grad;
  auto m = gather(pack([](const Chunk& c) { return c.m; }));
  auto v = gather(pack([](const Chunk& c) { return c.v; }));
  NamedTensors out;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    out.emplace_back("exp_avg." + name, m.narrow(0, offsets_[i], p.numel()).view(p.sizes()));
    out.emplace_back("exp_avg_sq." + name, v.narrow(0, offsets_[i], p.numel()).view(p.sizes()));
  }
  return out;
}

std::map<std::string, std::string> ZeroAdamW::load_state(const std::string& path) {
  torch::NoGradGuard no_grad;
  // The whole moments, briefly: a resumed run needs only its slices of them.
  NamedTensors whole;
  for (const auto& [name, p] : params_) {
    whole.emplace_back("exp_avg." + name, torch::zeros_like(p));
    whole.emplace_back("exp_avg_sq." + name, torch::zeros_like(p));
  }
  auto meta = load_tensors_into(path, whole);
  for (auto& c : chunks_) {
    c.m.copy_(whole[2 * c.slot].second.reshape({-1}).narrow(0, c.begin, c.len));
    c.v.copy_(whole[2 * c.slot + 1].second.reshape({-1}).narrow(0, c.begin, c.len));
  }
  return meta;
}

}  // namespace bytelm
