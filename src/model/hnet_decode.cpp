// hnet_decode.cpp — H-Net's cached decoding (paper §2.4). Every byte steps each stage's encoder and decoder
// (KV caches at byte positions); the inner network steps only for the rows whose byte starts a chunk, at that
// row's own chunk position, so each row keeps its own inner caches. The smoothed chunk output z̄ carries over
// between chunks exactly as in the training forward (same arithmetic, fp32).
// Row decoding (every row at its own position): the outer stage's encoder and decoder read every row's bytes
// in one call (KV cache rows at their own positions); routing compares each row's first new position with
// the last one it kept; the network inside steps for each row over its own new chunk starts (its own caches,
// as above); the chunk EMA runs position by position from each row's own smoothed state. No prefix reuse
// (rows_keep): the inner network's state at a kept prefix is not kept per position.
// Row shapes: R rows in a call, n positions per row (padded), D = D_0.
#include <c10/core/impl/LocalDispatchKeySet.h>

#include "model/hnet.h"
#include "model/module_util.h"
#include "util/error.h"

namespace bytelm {

// One stage's decoding state for a batch of rows (all at the same position of this stage).
struct HnetImpl::DecodeState {
  std::vector<KVCache> encoder, decoder;
  torch::Tensor last;      // (B, D_s) fp32: the last encoder output (routing compares the next one with it)
  torch::Tensor smoothed;  // (B, D_s) fp32: z̄ of each row's last chunk
  int64_t positions = 0;
  // Per row, the network inside this stage: the next stage's state (batch 1), or the main network's caches
  // and the number of chunks it has seen.
  std::vector<std::unique_ptr<DecodeState>> inner;
  std::vector<std::vector<KVCache>> main;
  std::vector<int64_t> chunks;
};

std::unique_ptr<HnetImpl::DecodeState> HnetImpl::new_state(int64_t s, int64_t batch) {
  auto state = std::make_unique<DecodeState>();
  auto& st = stage(s);
  state->encoder = st.encoder->make_caches(batch, cfg_.context);
  state->decoder = st.decoder->make_caches(batch, cfg_.context);
  state->smoothed = torch::zeros({batch, st.width}, torch::TensorOptions().device(head->weight.device()));
  state->inner.resize(size_t(batch));
  state->main.resize(size_t(batch));
  state->chunks.assign(size_t(batch), 0);
  return state;
}

torch::Tensor HnetImpl::start(int64_t batch) {
  decode_ = new_state(0, batch);
  decoded_ = 0;
  auto ids =
      torch::full({batch, 1}, kStartId, torch::TensorOptions().dtype(torch::kLong).device(head->weight.device()));
  return project(head, feed_stage(0, *decode_, embed(ids))).select(1, 0);  // (B, 256)
}

torch::Tensor HnetImpl::feed(const torch::Tensor& bytes) {
  const int64_t n = bytes.size(1);
  if (!decode_) throw Error("hnet: feed() before start()");
  if (decoded_ + n > cfg_.context - 1)
    throw Error("decoding past the context of " + std::to_string(cfg_.context) + " bytes");
  auto out = project(head, feed_stage(0, *decode_, embed(bytes)));  // (B, n, 256)
  decoded_ += n;
  return out;
}

torch::Tensor HnetImpl::feed_stage(int64_t s, DecodeState& state, const torch::Tensor& x) {
  auto& st = stage(s);
  const int64_t B = x.size(0), n = x.size(1), D = st.width;
  auto encoded = st.encoder(x, state.positions, &state.encoder);  // (B, n, D)
  // Routing over [last, new positions]: the first probability route() returns is its forced sequence start.
  Routing r;
  if (state.last.defined()) {
    r = route(s, torch::cat({state.last.unsqueeze(1), encoded.to(torch::kFloat32)}, 1), torch::Tensor());
    r.p = r.p.narrow(1, 1, n);
    r.boundary = r.boundary.narrow(1, 1, n);
  } else {
    r = route(s, encoded, torch::Tensor());
  }
  // The inner network, row by row, over the row's new chunk starts.
  auto inner_out = torch::zeros({B, n, D}, encoded.options().dtype(torch::kFloat32));  // (B, n, D)
  auto starts = r.boundary.to(torch::kCPU);
  for (int64_t row = 0; row < B; ++row) {
    auto at = starts[row].nonzero().view({-1}).to(encoded.device());  // (m) positions starting a chunk
    if (at.numel() == 0) continue;
    auto chunks = encoded[row].index_select(0, at).unsqueeze(0);  // (1, m, D)
    if (st.pad.defined())
      chunks = torch::cat({chunks, st.pad.to(chunks.scalar_type()).expand({1, at.numel(), st.pad.size(0)})}, 2);
    auto z = feed_inner(s, state, row, chunks).narrow(2, 0, D);  // (1, m, D)
    inner_out[row].index_copy_(0, at, z[0].to(torch::kFloat32));
  }
  // Smoothing, position by position: a chunk start updates z̄ as in HnetImpl::smooth; other positions keep it.
  auto P = r.p.clamp(1e-4, 1 - 1e-4);
  std::vector<torch::Tensor> up;
  auto prev = state.smoothed;
  for (int64_t j = 0; j < n; ++j) {
    auto w = P.select(1, j).unsqueeze(1);  // (B, 1)
    auto next = w * inner_out.select(1, j) + (1 - w) * prev;
    prev = torch::where(r.boundary.select(1, j).unsqueeze(1), next, prev);
    up.push_back(prev);
  }
  state.smoothed = prev;
  auto z = torch::stack(up, 1) * straight_through(r.p, r.boundary).unsqueeze(2) +
           st.residual_proj(encoded.to(torch::kFloat32));
  auto out = st.decoder(z.to(encoded.scalar_type()), state.positions, &state.decoder);  // (B, n, D)
  state.last = encoded.select(1, n - 1).to(torch::kFloat32);
  state.positions += n;
  return out;
}

torch::Tensor HnetImpl::feed_inner(int64_t s, DecodeState& state, int64_t row, const torch::Tensor& chunks) {
  if (s + 1 < int64_t(stages->size())) {
    auto& inner = state.inner[size_t(row)];
    if (!inner) inner = new_state(s + 1, 1);
    return feed_stage(s + 1, *inner, chunks);
  }
  auto& caches = state.main[size_t(row)];
  if (caches.empty()) caches = main->make_caches(1, cfg_.context);
  auto out = main(chunks, state.chunks[size_t(row)], &caches);  // (1, m, D_main)
  state.chunks[size_t(row)] += chunks.size(1);
  return out;
}

// ---- row decoding ------------------------------------------------------------------------------------

void HnetImpl::rows_begin(int64_t slots) {
  decode_ = new_state(0, slots);
  decode_->last = torch::zeros({slots, stage(0).width}, decode_->smoothed.options());
  row_decoded_.assign(size_t(slots), kRowNotStarted);
  decoded_ = 0;
}

torch::Tensor HnetImpl::rows_feed(const std::vector<RowFeed>& feeds, bool every_id) {
  const auto after = check_row_feeds(feeds, cfg_.context - 1, "bytes", kByteVocab);
  if (!decode_ || !decode_->last.defined() || decode_->last.size(0) != row_slots())
    throw Error("hnet: rows_feed() before rows_begin()");
  DecodeState& state = *decode_;
  auto& st = stage(0);
  const int64_t R = int64_t(feeds.size()), D = st.width;
  const auto dev = head->weight.device();
  // Each row's positions: the start id on a restart, then its bytes; padded to n with the last one.
  std::vector<int64_t> slots, pos0, counts, ids, restarted, valid, last;
  int64_t n = 1;
  for (const auto& f : feeds) n = std::max<int64_t>(n, int64_t(f.ids.size()) + (f.restart ? 1 : 0));
  for (int64_t r = 0; r < R; ++r) {
    const RowFeed& f = feeds[size_t(r)];
    if (f.restart) {  // a fresh inner network, chunk count and smoothed state
      state.inner[size_t(f.slot)].reset();
      state.main[size_t(f.slot)].clear();
      state.chunks[size_t(f.slot)] = 0;
      ids.push_back(kStartId);
    }
    ids.insert(ids.end(), f.ids.begin(), f.ids.end());
    slots.push_back(f.slot);
    pos0.push_back(f.restart ? 0 : row_decoded_[size_t(f.slot)] + 1);
    counts.push_back(int64_t(f.ids.size()) + (f.restart ? 1 : 0));
    ids.resize(ids.size() + size_t(n - counts.back()), ids.back());
    restarted.push_back(f.restart);
    valid.push_back(1);  // routing's first column: the row's last kept position
    for (int64_t i = 0; i < n; ++i) valid.push_back(i < counts.back());
    last.push_back(r * n + counts.back() - 1);
  }
  auto rb = make_row_batch(slots, row_slots(), pos0, counts, n, cfg_.context, dev);
  auto rows = long_tensor(slots, dev);
  auto encoded = st.encoder->rows(embed(long_tensor(ids, dev).view({R, n})), rb, state.encoder);  // (R, n, D)
  // Routing over [last kept, new positions]; a restarted row's first position starts a chunk.
  auto fresh = long_tensor(restarted, dev).to(torch::kBool).view({R, 1});
  auto prev = state.last.index_select(0, rows).unsqueeze(1);  // (R, 1, D)
  Routing r = route(0, torch::cat({prev, encoded.to(torch::kFloat32)}, 1),
                    long_tensor(valid, dev).to(torch::kBool).view({R, n + 1}));
  auto forced = torch::zeros({R, n}, fresh.options());  // (R, n): true at a restarted row's first position
  forced.select(1, 0).copy_(fresh.view({R}));
  auto p = torch::where(forced, torch::ones({}, r.p.options()), r.p.narrow(1, 1, n));
  auto boundary = r.boundary.narrow(1, 1, n).logical_or(forced);
  // The inner network, row by row, over the row's new chunk starts.
  auto inner_out = torch::zeros({R, n, D}, encoded.options().dtype(torch::kFloat32));  // (R, n, D)
  auto starts = boundary.to(torch::kCPU);
  for (int64_t row = 0; row < R; ++row) {
    auto at = starts[row].nonzero().view({-1}).to(dev);  // (m) positions starting a chunk
    if (at.numel() == 0) continue;
    auto chunks = encoded[row].index_select(0, at).unsqueeze(0);  // (1, m, D)
    if (st.pad.defined())
      chunks = torch::cat({chunks, st.pad.to(chunks.scalar_type()).expand({1, at.numel(), st.pad.size(0)})}, 2);
    auto z = feed_inner(0, state, slots[size_t(row)], chunks).narrow(2, 0, D);  // (1, m, D)
    inner_out[row].index_copy_(0, at, z[0].to(torch::kFloat32));
  }
  // The chunk EMA, position by position, from each row's smoothed state (zero after a restart).
  auto P = p.clamp(1e-4, 1 - 1e-4);
  auto smoothed = torch::where(fresh, torch::zeros({}, state.smoothed.options()), state.smoothed.index_select(0, rows));
  std::vector<torch::Tensor> up;
  for (int64_t j = 0; j < n; ++j) {
    auto w = P.select(1, j).unsqueeze(1);  // (R, 1)
    auto next = w * inner_out.select(1, j) + (1 - w) * smoothed;
    smoothed = torch::where(boundary.select(1, j).unsqueeze(1), next, smoothed);  // padding never starts one
    up.push_back(smoothed);
  }
  auto z = torch::stack(up, 1) * straight_through(p, boundary).unsqueeze(2) +
           st.residual_proj(encoded.to(torch::kFloat32));                       // (R, n, D)
  auto out = st.decoder->rows(z.to(encoded.scalar_type()), rb, state.decoder);  // (R, n, D)
  auto at_last = long_tensor(last, dev);
  state.last.index_copy_(0, rows, encoded.reshape({R * n, D}).index_select(0, at_last).to(torch::kFloat32));
  state.smoothed.index_copy_(0, rows, smoothed);
  for (int64_t i = 0; i < R; ++i) row_decoded_[size_t(slots[size_t(i)])] = after[size_t(i)];
  if (every_id) return project(head, out);                                 // (R, n, 256)
  return project(head, out.reshape({R * n, D}).index_select(0, at_last));  // (R, 256)
}

}  // namespace bytelm
