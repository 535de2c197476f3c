// blt_decode.cpp — BLT's cached decoding (start, feed, one step per byte) and its static-shape steps for
// CUDA graphs (see blt.h).
#include "model/blt.h"

#include <limits>

#include "blt/hash.h"
#include "model/module_util.h"
#include "util/device.h"
#include "util/error.h"

namespace bytelm {

// ---- cached decoding --------------------------------------------------------------------------------

torch::Tensor BltImpl::start(int64_t batch) {
  allocate(batch, /*per_row_global=*/true);
  return step(std::vector<int64_t>(size_t(batch), blt::kBos));
}

void BltImpl::allocate(int64_t batch, bool per_row_global) {
  const int64_t cap = cfg_.context + 1;  // BOS + context bytes
  const int64_t k = cfg_.cross_attn_k, De = cfg_.encoder.width, Dd = cfg_.decoder.width;
  if (rule_.needs_entropies()) patcher_caches_ = model->patcher->make_caches(batch, cap, std::move(patcher_caches_));
  encoder_caches_ = model->local_encoder->make_caches(batch, cap, std::move(encoder_caches_));
  decoder_caches_ = model->local_decoder->make_caches(batch, cap, std::move(decoder_caches_));
  rows_.resize(size_t(batch));
  for (auto& row : rows_) {
    if (per_row_global)
      row.global_caches = model->global_transformer->make_caches(1, cap, std::move(row.global_caches));
    else
      row.global_caches.clear();
    row.reset();
  }
  // Decoding state is allocated once per batch size and overwritten in place (captured CUDA graphs point
  // at it). Encoder states are the fp32 residual stream; patch keys/values come out of a projection
  // (bf16 under autocast).
  const auto dev = lm_head->weight.device();
  const auto longs = torch::TensorOptions().dtype(torch::kLong).device(dev);
  const auto floats = torch::TensorOptions().dtype(lm_head->weight.scalar_type()).device(dev);
  const auto kv_opts = floats.dtype(compute_dtype(dev, lm_head->weight.scalar_type()));
  if (!reusable(states_, {batch, cap, De}, floats) || !reusable(patch_kv_, {batch, k, Dd}, kv_opts)) {
    states_ = torch::zeros({batch, cap, De}, floats);
    patch_kv_ = torch::zeros({batch, k, Dd}, kv_opts);
    in_id_ = torch::zeros({1, 1}, longs);
    t_ = torch::zeros({}, longs);
    start_ = torch::zeros({}, longs);
    gpos_ = torch::zeros({}, longs);
    in_rows_ = torch::zeros({1, 1, cfg_.hash_functions * int64_t(cfg_.hash_sizes.size())}, longs);
    k_index_ = torch::arange(k, longs).view({1, 1, k});
    positions_ = torch::arange(cap, longs);
    entropy_out_ = torch::zeros({1}, floats.dtype(torch::kFloat32));
    static_logits_ = torch::zeros({1, blt::kVocab}, floats.dtype(torch::kFloat32));
  }
  decoded_ = 0;
}

torch::Tensor BltImpl::feed(const torch::Tensor& bytes) {
  const int64_t B = bytes.size(0), n = bytes.size(1);
  if (B != int64_t(rows_.size()))
    throw Error("feed: " + std::to_string(B) + " rows, but start() was called for " + std::to_string(rows_.size()));
  if (decoded_ + n > cfg_.context - 1)
    throw Error("decoding past the context of " + std::to_string(cfg_.context) + " bytes");
  auto cpu = bytes.to(torch::kCPU).contiguous();
  const int64_t* src = cpu.data_ptr<int64_t>();
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int64_t> ids(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) ids[b] = src[b * n + i] + blt::kByteOffset;
    out.push_back(step(ids));
    ++decoded_;
  }
  return torch::stack(out, 1);  // (B, n, 260)
}

std::vector<int64_t> BltImpl::hash_rows(int64_t b, int64_t t) const {
  const int n_sizes = int(cfg_.hash_sizes.size());
  const int64_t* ids = rows_[b].ids.data();
  std::vector<int64_t> rows;
  for (int f = 0; f < int(cfg_.hash_functions); ++f)
    for (int s = 0; s < n_sizes; ++s)
      rows.push_back(blt::fused_row(blt::ngram_bucket(ids, t, int(cfg_.hash_sizes[s]), f, cfg_.hash_vocab),
                                    blt::table_index(f, s, n_sizes), cfg_.hash_vocab));
  return rows;
}

bool BltImpl::closes_patch(int64_t b) {
  // Id t (the row's last one) closes its patch if id t+1 starts a new one.
  Row& row = rows_[b];
  const bool close = patch_lengths(row.ids, row.ent).back() == 1;
  if (close) {
    ++row.closed;
    row.open_start = int64_t(row.ids.size());
  }
  row.closed_after.push_back(row.closed);
  row.open_after.push_back(row.open_start);
  return close;
}

torch::Tensor BltImpl::decode_with(
    torch::Tensor h, const torch::Tensor& kv, const torch::Tensor& index,
    const std::function<torch::Tensor(BlockImpl&, const torch::Tensor&, size_t)>& block) {
  auto dec = model->local_decoder;
  for (size_t i = 0; i < dec->layers->size(); ++i) {
    if (i == 0 || cfg_.decoder_cross_all_layers)  // HF: h + (o_proj(attn) + h)
      h = 2 * h + dec->cross_attn_layers[i]->as<CrossAttentionImpl>()->forward_grouped(h, kv, index, {});
    h = block(*dec->layers[i]->as<BlockImpl>(), h, i);
  }
  return lm_head(dec->norm(h));
}

torch::Tensor BltImpl::step(const std::vector<int64_t>& ids) {
  const int64_t B = int64_t(ids.size()), t = int64_t(rows_[0].ids.size()), k = cfg_.cross_attn_k;
  for (int64_t b = 0; b < B; ++b) rows_[b].ids.push_back(ids[b]);
  const auto dev = lm_head->weight.device();
  auto idt = torch::tensor(ids, torch::kLong).to(dev).view({B, 1});
  // 1. The entropy model reads id t: its entropy decides whether id t+1 starts a patch.
  if (rule_.needs_entropies()) {
    auto e = entropy_of(model->patcher->logits(idt, t, &patcher_caches_)).to(torch::kCPU).contiguous();  // (B, 1)
    for (int64_t b = 0; b < B; ++b) rows_[b].ent.push_back(e.data_ptr<float>()[b]);
  }
  // 2. The encoder reads id t (byte embedding + hash n-grams ending at t).
  auto enc = model->local_encoder;
  std::vector<int64_t> all_rows;
  for (int64_t b = 0; b < B; ++b) {
    auto r = hash_rows(b, t);
    all_rows.insert(all_rows.end(), r.begin(), r.end());
  }
  auto row_t = torch::tensor(all_rows, torch::kLong).to(dev).view({B, 1, -1});
  auto x = enc->embed_tokens(idt) + model->encoder_hash_tok_embedding(row_t).sum(2);  // (B, 1, D_e)
  auto h = enc->forward(x, t, &encoder_caches_);
  states_.narrow(1, t, 1).copy_(h);
  // 3. Rows whose id t+1 starts a patch have completed the patch holding t: pool it and step that row's
  //    global model (batch 1: rows close patches at different bytes).
  for (int64_t b = 0; b < B; ++b) {
    const int64_t first = rows_[b].open_start;
    if (closes_patch(b)) close_patch(b, first, t);
  }
  // 4. The decoder predicts id t+1 from the encoder state of t and the row's current global state.
  auto logits = decode(h, patch_kv_, k_index_.expand({B, 1, k}), t, &decoder_caches_);
  return logits.view({B, blt::kVocab});
}

void BltImpl::close_patch(int64_t b, int64_t first, int64_t last) {
  const auto dev = lm_head->weight.device();
  auto states = states_.select(0, b).narrow(0, first, last - first + 1).unsqueeze(0);  // (1, L, D_e)
  auto all = torch::arange(states.size(1), torch::TensorOptions().dtype(torch::kLong).device(dev)).view({1, 1, -1});
  auto g_in = patch_inputs(std::get<0>(states.max(1, true)), states, all, {});
  auto g = model->global_transformer->forward(g_in, rows_[b].closed - 1, &rows_[b].global_caches);  // (1, 1, D_g)
  patch_kv_.narrow(0, b, 1).copy_(decoder_kv(g));
}

void BltImpl::rewind(int64_t bytes) {
  check_rewind(bytes);
  decoded_ -= bytes;
  const int64_t n = decoded_ + 1;  // ids kept: BOS and the bytes
  for (auto* caches : {&patcher_caches_, &encoder_caches_, &decoder_caches_})
    for (auto& c : *caches) c.len = n;
  for (int64_t b = 0; b < int64_t(rows_.size()); ++b) {
    Row& row = rows_[b];
    const int64_t was_closed = row.closed;
    row.ids.resize(size_t(n));
    if (rule_.needs_entropies()) row.ent.resize(size_t(n));
    row.closed_after.resize(size_t(n));
    row.open_after.resize(size_t(n));
    row.closed = row.closed_after.back();
    row.open_start = row.open_after.back();
    if (row.closed == was_closed) continue;  // the global state of the last closed patch stays
    // Id c closed the last patch still closed (BOS always closes one): step the global model there again.
    int64_t c = n - 1;
    while (c > 0 && row.closed_after[size_t(c) - 1] == row.closed) --c;
    for (auto& cache : row.global_caches) cache.len = row.closed - 1;
    close_patch(b, c > 0 ? row.open_after[size_t(c) - 1] : 0, c);
  }
}

// ---- static steps (CUDA graphs) ---------------------------------------------------------------------
// The same computation as step(), split where the host must look: the entropy model's step, then its
// entropy decides (on the host) whether this id closes a patch; then everything else in one computation.

int64_t BltImpl::static_prepare(const torch::Tensor& bytes) {
  if (decoded_ + 1 > cfg_.context - 1)
    throw Error("decoding past the context of " + std::to_string(cfg_.context) + " bytes");
  const int64_t cap = cfg_.context + 1;
  if (cap >= (int64_t(1) << 19)) throw Error("BLT static steps support contexts below 524288 bytes");
  if (rows_.size() != 1) throw Error("BLT static steps decode one sequence (batch 1)");
  Row& row = rows_[0];
  // The id is needed on the host anyway: its hash n-grams and the patching rule read it.
  const int64_t id = bytes.view({-1}).select(0, 0).item<int64_t>() + blt::kByteOffset;
  ++decoded_;
  const int64_t t = int64_t(row.ids.size());
  row.ids.push_back(id);
  in_id_.fill_(id);
  t_.fill_(t);
  for (auto* caches : {&patcher_caches_, &encoder_caches_, &decoder_caches_})
    for (auto& c : *caches) c.len = t + 1;
  static_phase_ = 1;
  if (rule_.needs_entropies()) return patcher_key(static_span(t + 1, cap));
  return static_next();
}

int64_t BltImpl::static_next() {
  if (static_phase_ != 1) return -1;
  static_phase_ = 2;
  Row& row = rows_[0];
  const int64_t t = int64_t(row.ids.size()) - 1, cap = cfg_.context + 1;
  if (rule_.needs_entropies()) row.ent.push_back(entropy_out_.item<float>());  // waits for the entropy model
  in_rows_.copy_(torch::tensor(hash_rows(0, t), torch::kLong).view({1, 1, -1}));
  start_.fill_(row.open_start);
  gpos_.fill_(row.closed);
  const int64_t global_span = static_span(row.closed + 1, cap);
  const bool close = closes_patch(0);
  if (close)  // the static global step writes position row.closed - 1 (what the cached path would)
    for (auto& c : row.global_caches) c.len = row.closed;
  return rest_key(static_span(t + 1, cap), close ? global_span : 0);
}

void BltImpl::static_compute(int64_t key) {
  const int64_t span = key & ((int64_t(1) << 19) - 1);
  if ((key >> 40) == 1) {  // the entropy model reads id t
    auto patcher = model->patcher;
    auto logits = patcher->lm_head(patcher->step(patcher->embed_tokens(in_id_), t_, span, patcher_caches_));
    entropy_out_.copy_(entropy_of(logits).view({1}));
    return;
  }
  const int64_t global_span = (key >> 20) & ((int64_t(1) << 19) - 1);
  auto enc = model->local_encoder;
  auto x = enc->embed_tokens(in_id_) + model->encoder_hash_tok_embedding(in_rows_).sum(2);  // (1, 1, D_e)
  auto h = enc->step(x, t_, span, encoder_caches_);
  states_.index_copy_(1, t_.view({1}), h.to(states_.scalar_type()));
  if (global_span > 0) {
    // The patch [start, t] closes: pool and cross-attend over those positions of a fixed window.
    auto states = states_.narrow(1, 0, span);  // (1, span, D_e)
    auto pos = positions_.narrow(0, 0, span);
    auto keep = pos.ge(start_).logical_and(pos.le(t_));  // (span)
    auto pooled = states.masked_fill(keep.logical_not().view({1, span, 1}), -INFINITY).amax(1, true);
    auto g_in = patch_inputs(pooled, states, pos.view({1, 1, span}), keep.view({1, 1, span}));
    auto g = model->global_transformer->step(g_in, gpos_, global_span, rows_[0].global_caches);  // (1, 1, D_g)
    patch_kv_.copy_(decoder_kv(g));
  }
  auto dec = model->local_decoder;
  auto logits = decode_with(h, patch_kv_, k_index_, [&](BlockImpl& block, const torch::Tensor& y, size_t i) {
    return block.step(y, dec->rope, t_, span, decoder_caches_[i]);
  });
  static_logits_.copy_(logits.view({1, blt::kVocab}));
}

}  // namespace bytelm
