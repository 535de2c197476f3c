// megabyte_decode.cpp — MEGABYTE's incremental decoding (see megabyte.h): the global model steps once per
// patch, each middle level once per unit of its own, the local model once per byte, each with KV caches;
// and the static-shape steps (CUDA graphs) of the paper's two-level model.
// Shapes: B batch, T bytes, P patch size, n units per group, D_G global width per byte, D_L local width.
#include "model/megabyte.h"

#include "util/device.h"
#include "util/error.h"

namespace bytelm {

torch::Tensor MegabyteImpl::patch_embedding(int64_t k) {
  const int64_t B = history_.size(0), P = cfg_.patch_size;
  // The conv encoder needs the bytes its receptive field reaches before the patch; outputs past that many
  // bytes into the window equal the full pass's (the window's own left padding no longer reaches them).
  const int64_t from = conv ? std::max<int64_t>(0, k * P - conv->receptive_field()) : k * P, len = (k + 1) * P - from;
  auto emb = global_embed(history_.narrow(1, from, len)) + global_pos->weight.narrow(0, from, len);  // (B, len, D_G)
  if (conv) emb = conv(emb).narrow(1, len - P, P);                                                   // (B, P, D_G)
  return emb.reshape({B, -1});                                                                       // (B, P*D_G)
}

torch::Tensor MegabyteImpl::local_step(const torch::Tensor& x, int64_t p) {
  const int64_t B = x.size(0);
  auto x3 = x.view({B, 1, cfg_.local.width});
  auto y = cfg_.cross_patch > 0 ? cross_patch_step(*local_model, cross_caches_, x3, p, cfg_.cross_patch)
                                : local_model(x3, p, &local_caches_);  // (B, 1, D_L)
  return project(head, y).view({B, kByteVocab});
}

torch::Tensor MegabyteImpl::decode_position(int64_t next) {
  const int64_t B = history_.size(0), P = cfg_.patch_size;
  torch::Tensor upper;  // (B, W): output of the level above when it stepped at `next`
  if (next % P == 0) {  // patch k starts: the global model reads patch k-1 (the pad for k = 0)
    const int64_t k = next / P;
    auto in = k == 0 ? global_pad.view({1, -1}).expand({B, -1}) : patch_embedding(k - 1);  // (B, P*D_G)
    upper = global_model(in.view({B, 1, -1}), k, &global_caches_).view({B, -1});
  }
  int64_t above = P;
  for (size_t i = 0; i <= levels.size(); ++i) {  // middle levels, then the local model (i == levels.size())
    const bool local = i == levels.size();
    const int64_t S = local ? 1 : levels[i]->cfg.patch_size, n = above / S, u = (next % above) / S;
    auto& ctx = local ? patch_ctx_ : level_ctx_[i];  // (B, n, W)
    if (upper.defined()) ctx.copy_((local ? global_to_local : levels[i]->from_above)(upper.view({B, n, -1})));
    upper = torch::Tensor();
    above = S;
    if (next % S != 0) continue;  // inside a unit of this level: nothing to step
    // Input at unit u: the slice from above + the embedding of unit u-1 (its S bytes), the pad at u = 0.
    auto& pad = local ? local_pad : levels[i]->pad;
    auto x =
        ctx.select(1, u) +
        (u == 0 ? pad : (local ? local_embed : levels[i]->embed)(history_.narrow(1, next - S, S)).reshape({B, -1}));
    if (local) {
      if (u == 0 && cfg_.cross_patch > 0 && next > 0)
        cross_patch_next_group(*local_model, cross_caches_, n, cfg_.cross_patch);
      if (u == 0)
        for (auto& c : local_caches_) c.len = 0;  // a new group: the local model starts afresh
      return local_step(x, u);
    }
    if (u == 0)
      for (auto& c : level_caches_[i]) c.len = 0;
    upper = levels[i]->model(x.view({B, 1, -1}), u, &level_caches_[i]).view({B, -1});
  }
  throw Error("unreachable: the local model steps at every byte");
}

torch::Tensor MegabyteImpl::start(int64_t batch) {
  const int64_t P = cfg_.patch_size, K = cfg_.context / P, n = cfg_.local_patch_size();
  global_caches_ = global_model->make_caches(batch, K, std::move(global_caches_));
  if (cfg_.cross_patch > 0)
    cross_caches_ = cross_patch_cache(*local_model, batch, n, cfg_.cross_patch);
  else
    local_caches_ = local_model->make_caches(batch, n, std::move(local_caches_));
  // Decoding state is allocated once per batch size (and dtype) and then overwritten in place, so the
  // tensors a captured CUDA graph points at stay valid from one start() to the next.
  const auto dev = head->weight.device();
  const auto longs = torch::TensorOptions().dtype(torch::kLong).device(dev);
  const auto ctx_opts = torch::TensorOptions().dtype(compute_dtype(dev, head->weight.scalar_type())).device(dev);
  if (!reusable(history_, {batch, cfg_.context}, longs) ||
      !reusable(patch_ctx_, {batch, n, cfg_.local.width}, ctx_opts)) {
    history_ = torch::zeros({batch, cfg_.context}, longs);
    patch_ctx_ = torch::zeros({batch, n, cfg_.local.width}, ctx_opts);
    prev_patch_ctx_ = torch::zeros_like(patch_ctx_);
    in_byte_ = torch::zeros({batch}, longs);
    p_ = torch::zeros({}, longs);
    k_ = torch::zeros({}, longs);
    zero_ = torch::zeros({}, longs);
    patch_offsets_ = torch::arange(P, longs);
    static_logits_ = torch::zeros({batch, kByteVocab}, torch::TensorOptions().device(dev));
  }
  level_caches_.resize(levels.size());
  level_ctx_.resize(levels.size());
  for (size_t i = 0; i < levels.size(); ++i) {
    const auto& l = levels[i]->cfg;
    const int64_t units = (i == 0 ? P : levels[i - 1]->cfg.patch_size) / l.patch_size;
    level_caches_[i] = levels[i]->model->make_caches(batch, units, std::move(level_caches_[i]));
    level_ctx_[i] = torch::zeros({batch, units, l.stack.width}, ctx_opts);
  }
  history_.zero_();
  decoded_ = 0;
  prev_patch_ = -1;
  return decode_position(0);
}

torch::Tensor MegabyteImpl::feed(const torch::Tensor& bytes) {
  const int64_t n = bytes.size(1);
  if (decoded_ + n > cfg_.context - 1)
    throw Error("decoding past the context of " + std::to_string(cfg_.context) + " bytes");
  if (levels.empty() && cfg_.cross_patch == 0) return feed_by_patch(bytes);
  std::vector<torch::Tensor> out;
  out.reserve(n);
  for (int64_t i = 0; i < n; ++i) {
    history_.select(1, decoded_).copy_(bytes.select(1, i));
    out.push_back(decode_position(++decoded_));
  }
  return torch::stack(out, 1);  // (B, n, 256)
}

void MegabyteImpl::global_step(int64_t k) {
  const int64_t B = history_.size(0), P = cfg_.patch_size;
  auto in = k == 0 ? global_pad.view({1, -1}).expand({B, -1}) : patch_embedding(k - 1);  // (B, P*D_G)
  auto g = global_model(in.view({B, 1, -1}), k, &global_caches_);                        // (B, 1, P*D_G)
  patch_ctx_.copy_(global_to_local(g.view({B, P, -1})));
  for (auto& c : local_caches_) c.len = 0;
}

torch::Tensor MegabyteImpl::local_run(int64_t next, int64_t len) {
  const int64_t B = history_.size(0), u = next % cfg_.patch_size, DL = cfg_.local.width;
  // Position t's input: its slice of the patch context + the embedding of byte t-1 (the pad at u = 0).
  auto prev = local_embed(history_.narrow(1, u == 0 ? next : next - 1, u == 0 ? len - 1 : len));  // (B, ., D_L)
  if (u == 0) prev = torch::cat({local_pad.view({1, 1, DL}).expand({B, 1, DL}).to(prev.scalar_type()), prev}, 1);
  auto x = patch_ctx_.narrow(1, u, len) + prev;             // (B, len, D_L)
  return project(head, local_model(x, u, &local_caches_));  // (B, len, 256)
}

torch::Tensor MegabyteImpl::feed_by_patch(const torch::Tensor& bytes) {
  const int64_t n = bytes.size(1), P = cfg_.patch_size;
  history_.narrow(1, decoded_, n).copy_(bytes);
  std::vector<torch::Tensor> out;
  for (int64_t next = decoded_ + 1, end = decoded_ + n; next <= end;) {  // positions to predict
    const int64_t k = next / P, len = std::min(end, k * P + P - 1) - next + 1;
    if (next % P == 0) {  // patch k starts; keep patch k-1's context for a rewind into it
      prev_patch_ctx_.copy_(patch_ctx_);
      prev_patch_ = k - 1;
      global_step(k);
    }
    out.push_back(local_run(next, len));
    next += len;
  }
  decoded_ += n;
  return out.size() == 1 ? out[0] : torch::cat(out, 1);  // (B, n, 256)
}

void MegabyteImpl::rewind(int64_t bytes) {
  check_rewind(bytes);
  if (!can_rewind()) throw Error("a megabyte model with cross-patch attention cannot rewind its decoding caches");
  const int64_t P = cfg_.patch_size, next = decoded_ - bytes;  // the last position decode_position() keeps
  const int64_t k = next / P, current = decoded_ / P;
  decoded_ = next;
  if (!levels.empty()) {  // patch k's global step and every position of it up to `next` again
    for (auto& c : global_caches_) c.len = k;
    for (int64_t position = k * P; position <= next; ++position) decode_position(position);
    return;
  }
  if (k < current) {
    if (k == prev_patch_) {  // the previous patch: its global entry and context are kept
      for (auto& c : global_caches_) c.len = k + 1;
      patch_ctx_.copy_(prev_patch_ctx_);
      for (auto& c : local_caches_) c.len = 0;
    } else {
      for (auto& c : global_caches_) c.len = k;
      global_step(k);
    }
    prev_patch_ = -1;
    local_run(k * P, next % P + 1);  // the patch's positions up to `next` in one call
    return;
  }
  for (auto& c : local_caches_) c.len = next % P + 1;  // same patch: its global step and context stay
}

int64_t MegabyteImpl::static_prepare(const torch::Tensor& bytes) {
  const int64_t P = cfg_.patch_size;
  if (decoded_ + 1 > cfg_.context - 1)
    throw Error("decoding past the context of " + std::to_string(cfg_.context) + " bytes");
  history_.select(1, decoded_).copy_(bytes.view({-1}));
  const int64_t next = ++decoded_, k = next / P, p = next % P;
  for (auto& c : local_caches_) c.len = p + 1;
  if (p == 0) {  // patch k-1 is complete: a global step for patch k (which rewind cannot undo cheaply)
    prev_patch_ = -1;
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
  auto idx = (k_ - 1) * P + patch_offsets_;                                                          // (P)
  auto emb = global_embed(history_.index_select(1, idx)) + global_pos->weight.index_select(0, idx);  // (B, P, D_G)
  auto g = global_model->step(emb.reshape({B, 1, P * DG}), k_, key, global_caches_);                 // (B, 1, P*D_G)
  patch_ctx_.copy_(global_to_local(g.view({B, P, DG})));
  auto x = patch_ctx_.narrow(1, 0, 1) + local_pad;  // (B, 1, D_L)
  static_logits_.copy_(project(head, local_model->step(x, zero_, P, local_caches_)).select(1, 0));
}

}  // namespace bytelm
