// blt_rows.cpp — BLT's row decoding (model.h, rows_feed): every row at its own position, so rows restart,
// prefill, decode and stop independently. One call takes each row's ids (BOS first on a restart) and:
//   1. the entropy model reads them all at once (row positions) -> one entropy per id;
//   2. on the host, id by id, the patching rule decides where patches close, exactly as cached decoding
//      does (each decision sees only the ids up to it);
//   3. the encoder reads them all at once (byte embedding + hash n-grams) -> their states;
//   4. the global model steps once over every patch the call closed, each row at its own patch index;
//   5. the decoder reads them all at once, id t cross-attending to the global state of the last patch
//      closed at or before t (the state before the call for ids ahead of the row's first close).
// A decoding row is one id, a prompt chunk many, in the same call. Shapes: S rows in the caches, R rows in
// a call, n ids per row (padded), G rows closing patches, M patches per such row (padded), L ids per patch
// (padded), k = cross_attn_k, D_e/D_g/D_d widths, V = 260.
#include <torch/torch.h>

#include <algorithm>

#include "blt/hash.h"
#include "model/blt.h"
#include "util/error.h"

namespace bytelm {

void BltImpl::rows_begin(int64_t slots) {
  allocate(slots, /*per_row_global=*/false);
  row_global_caches_ = model->global_transformer->make_caches(slots, cfg_.context + 1, std::move(row_global_caches_));
  row_decoded_.assign(size_t(slots), kRowNotStarted);
}

torch::Tensor BltImpl::rows_global(const std::vector<int64_t>& slots,
                                   const std::vector<std::vector<std::pair<int64_t, int64_t>>>& patches) {
  const int64_t G = int64_t(slots.size()), k = cfg_.cross_attn_k, De = cfg_.encoder.width;
  const auto dev = lm_head->weight.device();
  int64_t M = 1, L = 1;
  for (const auto& p : patches) {
    M = std::max(M, int64_t(p.size()));
    for (const auto& [first, last] : p) L = std::max(L, last - first + 1);
  }
  // The ids of each patch (a row's padding patches repeat its last one, so no query is left without keys).
  std::vector<int64_t> index(size_t(G * M * L), 0), valid(size_t(G * M * L), 0), pos0, counts, last;
  for (int64_t g = 0; g < G; ++g) {
    const auto& p = patches[size_t(g)];
    const int64_t m = int64_t(p.size());
    for (int64_t j = 0; j < M; ++j) {
      const auto [first, end] = p[size_t(std::min(j, m - 1))];
      for (int64_t i = 0; i <= end - first; ++i) {
        index[size_t((g * M + j) * L + i)] = first + i;
        valid[size_t((g * M + j) * L + i)] = 1;
      }
    }
    pos0.push_back(rows_[size_t(slots[size_t(g)])].closed - m);  // the global position of its first patch
    counts.push_back(m);
    last.push_back(g * M + m - 1);
  }
  // Gathered from the flat states (S*C, D_e) by row and position, so only the patches' states are read.
  const int64_t C = states_.size(1);
  std::vector<int64_t> flat(index.size()), local(index.size());
  for (size_t i = 0; i < index.size(); ++i) {
    flat[i] = slots[i / size_t(M * L)] * C + index[i];
    local[i] = int64_t(i % size_t(M * L));  // the id's place in its row's gathered patches
  }
  auto rows = long_tensor(slots, dev);
  auto ok = long_tensor(valid, dev).view({G, M, L}).to(torch::kBool);
  auto grouped = states_.view({-1, De}).index_select(0, long_tensor(flat, dev)).view({G, M * L, De});
  auto pooled =
      grouped.view({G, M, L, De}).masked_fill(ok.logical_not().unsqueeze(-1), -INFINITY).amax(2);  // (G, M, D_e)
  auto g_in = patch_inputs(pooled, grouped, long_tensor(local, dev).view({G, M, L}), ok);          // (G, M, D_g)
  auto rb = make_row_batch(slots, row_slots(), pos0, counts, M, cfg_.context + 1, dev);
  auto g = model->global_transformer->rows(g_in, rb, row_global_caches_);          // (G, M, D_g)
  auto kv = decoder_kv(g);                                                         // (G, M*k, D_d)
  auto last_kv = kv.view({G * M, k, -1}).index_select(0, long_tensor(last, dev));  // (G, k, D_d)
  patch_kv_.index_copy_(0, rows, last_kv.to(patch_kv_.scalar_type()));
  return kv;
}

torch::Tensor BltImpl::rows_feed(const std::vector<RowFeed>& feeds, bool every_id) {
  const auto after = check_row_feeds(feeds, cfg_.context - 1, "bytes", kByteVocab);
  const int64_t R = int64_t(feeds.size()), S = row_slots(), k = cfg_.cross_attn_k, De = cfg_.encoder.width;
  const auto dev = lm_head->weight.device();
  // Each row's ids: BOS on a restart, then its bytes (as ids), padded to n with the row's last id.
  std::vector<int64_t> slots, pos0, counts, ids;
  int64_t n = 1;
  for (const auto& f : feeds) n = std::max<int64_t>(n, int64_t(f.ids.size()) + (f.restart ? 1 : 0));
  for (const auto& f : feeds) {
    Row& row = rows_[size_t(f.slot)];
    if (f.restart) {
      row.reset();
      ids.push_back(blt::kBos);
    }
    for (int64_t b : f.ids) ids.push_back(b + blt::kByteOffset);
    slots.push_back(f.slot);
    pos0.push_back(int64_t(row.ids.size()));
    counts.push_back(int64_t(f.ids.size()) + (f.restart ? 1 : 0));
    ids.resize(ids.size() + size_t(n - counts.back()), ids.back());
  }
  auto rb = make_row_batch(slots, S, pos0, counts, n, cfg_.context + 1, dev);
  auto idt = long_tensor(ids, dev).view({R, n});
  // 1. Entropies of every id.
  torch::Tensor ent;  // (R, n) on the host
  if (rule_.needs_entropies()) {
    auto p = model->patcher;
    ent = entropy_of(p->lm_head(p->rows(p->embed_tokens(idt), rb, patcher_caches_))).to(torch::kCPU).contiguous();
  }
  // 2. Patch boundaries, id by id; closes_before[r * n + i]: patches row r closed in this call up to id i.
  std::vector<int64_t> gslots, gr, closes_before(size_t(R * n), 0), hash;
  std::vector<std::vector<std::pair<int64_t, int64_t>>> patches;
  for (int64_t r = 0; r < R; ++r) {
    const int64_t b = slots[size_t(r)];
    std::vector<std::pair<int64_t, int64_t>> closed;
    for (int64_t i = 0; i < n; ++i) {
      if (i < counts[size_t(r)]) {
        Row& row = rows_[size_t(b)];
        row.ids.push_back(ids[size_t(r * n + i)]);
        if (ent.defined()) row.ent.push_back(ent.data_ptr<float>()[r * n + i]);
        const int64_t first = row.open_start, t = int64_t(row.ids.size()) - 1;
        if (closes_patch(b)) closed.emplace_back(first, t);
      }
      closes_before[size_t(r * n + i)] = int64_t(closed.size());
      const auto r_hash = hash_rows(b, pos0[size_t(r)] + std::min(i, counts[size_t(r)] - 1));
      hash.insert(hash.end(), r_hash.begin(), r_hash.end());
    }
    if (closed.empty()) continue;
    gslots.push_back(b);
    gr.push_back(r);
    patches.push_back(std::move(closed));
  }
  // 3. The encoder; its states are kept for pooling.
  auto enc = model->local_encoder;
  auto x = enc->embed_tokens(idt) + model->encoder_hash_tok_embedding(long_tensor(hash, dev).view({R, n, -1})).sum(2);
  auto h = enc->rows(x, rb, encoder_caches_);  // (R, n, D_e)
  states_.index_put_({rb.write_row, rb.write_pos},
                     h.reshape({R * n, De}).index_select(0, rb.write_src).to(states_.scalar_type()));
  // 4. The global model over the patches closed; the decoder's keys/values: [before the call, patch 1..M].
  auto kv = patch_kv_.index_select(0, long_tensor(slots, dev));  // (R, k, D_d)
  if (!gslots.empty()) {
    auto fresh = rows_global(gslots, patches);  // (G, M*k, D_d)
    auto more = torch::zeros({R, fresh.size(1), kv.size(2)}, kv.options());
    more.index_copy_(0, long_tensor(gr, dev), fresh.to(kv.scalar_type()));
    kv = torch::cat({kv, more}, 1);  // (R, (1+M)*k, D_d)
  }
  // 5. The decoder: id i of row r reads patch closes_before[r * n + i] of kv.
  auto index = long_tensor(closes_before, dev).view({R, n, 1}) * k + torch::arange(k, idt.options()).view({1, 1, k});
  auto dec = model->local_decoder;
  auto logits = decode_with(h, kv, index, [&](BlockImpl& block, const torch::Tensor& y, size_t i) {
    return block.rows(y, dec->rope, rb, decoder_caches_[i]);
  });  // (R, n, V)
  for (int64_t r = 0; r < R; ++r) row_decoded_[size_t(slots[size_t(r)])] = after[size_t(r)];
  if (every_id) return logits;
  std::vector<int64_t> last;
  for (int64_t r = 0; r < R; ++r) last.push_back(r * n + counts[size_t(r)] - 1);
  return logits.reshape({R * n, blt::kVocab}).index_select(0, long_tensor(last, dev));  // (R, V)
}

int64_t BltImpl::rows_keep(int64_t from, int64_t to, int64_t bytes) {
  const int64_t have = row_decoded_.at(size_t(from));
  if (have == kRowNotStarted || bytes < 0) return kRowNotStarted;
  const int64_t keep = std::min(bytes, have), n = keep + 1;  // BOS and the bytes kept
  Row& dst = rows_[size_t(to)];
  const Row& src = rows_[size_t(from)];
  const int64_t was_closed = src.closed;
  if (from != to) {
    for (auto* caches : {&patcher_caches_, &encoder_caches_, &decoder_caches_}) copy_cache_rows(*caches, from, to, n);
    states_[to].narrow(0, 0, n).copy_(states_[from].narrow(0, 0, n));
    dst.ids.assign(src.ids.begin(), src.ids.begin() + n);
    dst.ent.assign(src.ent.begin(), src.ent.begin() + (src.ent.empty() ? 0 : n));
    dst.closed_after.assign(src.closed_after.begin(), src.closed_after.begin() + n);
    dst.open_after.assign(src.open_after.begin(), src.open_after.begin() + n);
  } else {
    dst.ids.resize(size_t(n));
    if (!dst.ent.empty()) dst.ent.resize(size_t(n));
    dst.closed_after.resize(size_t(n));
    dst.open_after.resize(size_t(n));
  }
  dst.closed = dst.closed_after.back();
  dst.open_start = dst.open_after.back();
  row_decoded_.at(size_t(to)) = keep;
  if (dst.closed == was_closed) {  // the row's last closed patch is the source's: its global state too
    if (from != to) {
      copy_cache_rows(row_global_caches_, from, to, dst.closed);
      patch_kv_[to].copy_(patch_kv_[from]);
    }
    return keep;
  }
  // The last patch still closed was closed by id c (BOS always closes one): step the global model there again.
  int64_t c = n - 1;
  while (c > 0 && dst.closed_after[size_t(c) - 1] == dst.closed) --c;
  if (from != to) copy_cache_rows(row_global_caches_, from, to, dst.closed - 1);
  rows_global({to}, {{{c > 0 ? dst.open_after[size_t(c) - 1] : 0, c}}});
  return keep;
}

}  // namespace bytelm
