// hnet_decode.cpp — H-Net's cached decoding (paper §2.4). Every byte steps each stage's encoder and decoder
// (KV caches at byte positions); the inner network steps only for the rows whose byte starts a chunk, at that
// row's own chunk position, so each row keeps its own inner caches. The smoothed chunk output z̄ carries over
// between chunks exactly as in the training forward (same arithmetic, fp32).
#include <c10/core/impl/LocalDispatchKeySet.h>

#include "model/hnet.h"
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

}  // namespace bytelm
