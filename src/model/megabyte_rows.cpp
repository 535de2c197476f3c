// megabyte_rows.cpp — MEGABYTE's row decoding (model.h, rows_feed): every row at its own byte position.
// A call advances its rows by segments, the positions of a row that lie in one patch: for each segment the
// global model steps only for the rows whose segment opens a patch (each at its own patch index), then the
// local model runs every row's segment at once, from its own position in its patch. A decoding byte is a
// segment of one; a prompt chunk costs one call per patch it touches. The paper's main-text model only (the
// variants decode with feed()).
// Shapes: S rows in the caches, R rows in a call, G rows stepping the global model, n entries per segment,
// P patch size, T context, D_G global width per byte, D_L local width.
#include <torch/torch.h>

#include <algorithm>

#include "model/megabyte.h"
#include "util/device.h"
#include "util/error.h"

namespace bytelm {

namespace {
constexpr int64_t kStartEntry = -1;  // rows_segment(): restart the row

torch::Tensor longs(const std::vector<int64_t>& v, const torch::Device& device) {
  return torch::from_blob(const_cast<int64_t*>(v.data()), {int64_t(v.size())}, torch::kLong)
      .to(device, /*non_blocking=*/false, /*copy=*/true);
}
}  // namespace

void MegabyteImpl::rows_begin(int64_t slots) {
  if (!has_row_decoding()) LanguageModelImpl::rows_begin(slots);
  start(slots);  // caches and decoding tensors for `slots` rows
  row_decoded_.assign(size_t(slots), kRowNotStarted);
}

void MegabyteImpl::rows_global(const std::vector<int64_t>& slots, const std::vector<int64_t>& k) {
  const int64_t G = int64_t(slots.size()), P = cfg_.patch_size, DG = cfg_.global_byte_width();
  const auto dev = head->weight.device();
  std::vector<int64_t> idx(size_t(G * P)), first;
  for (int64_t g = 0; g < G; ++g)
    for (int64_t i = 0; i < P; ++i) idx[size_t(g * P + i)] = std::max<int64_t>(0, k[g] - 1) * P + i;
  for (int64_t g = 0; g < G; ++g) first.push_back(k[g] == 0);
  auto rows = longs(slots, dev);
  auto where = longs(idx, dev).view({G, P});                                  // byte positions of patch k-1
  auto emb = global_embed(history_.index_select(0, rows).gather(1, where)) +  // (G, P, D_G)
             global_pos->weight.index_select(0, where.view({-1})).view({G, P, DG});
  auto pad = global_pad.view({1, -1}).to(emb.scalar_type());
  auto in = torch::where(longs(first, dev).view({G, 1}).to(torch::kBool), pad, emb.reshape({G, P * DG}));
  auto rb = make_row_batch(slots, history_.size(0), k, std::vector<int64_t>(size_t(G), 1), 1, cfg_.context / P, dev);
  auto out = global_model->rows(in.view({G, 1, P * DG}), rb, global_caches_);  // (G, 1, P*D_G)
  auto ctx = global_to_local(out.view({G, P, DG}));                            // (G, P, D_L)
  patch_ctx_.index_copy_(0, rows, ctx.to(patch_ctx_.scalar_type()));
}

torch::Tensor MegabyteImpl::rows_segment(const std::vector<int64_t>& slots,
                                         const std::vector<std::vector<int64_t>>& segments) {
  const int64_t R = int64_t(slots.size()), P = cfg_.patch_size, T = cfg_.context, DL = cfg_.local.width;
  const auto dev = head->weight.device();
  std::vector<int64_t> wrow, wpos, wbyte, gslots, gk, first(static_cast<size_t>(R)), counts;
  size_t n = 1;
  for (int64_t r = 0; r < R; ++r) {
    int64_t& decoded = row_decoded_[size_t(slots[r])];
    for (size_t j = 0; j < segments[r].size(); ++j) {
      const int64_t e = segments[r][j];
      if (e == kStartEntry) {
        decoded = 0;
      } else {
        wrow.push_back(slots[r]);
        wpos.push_back(decoded);
        wbyte.push_back(e);
        ++decoded;
      }
      if (j == 0) first[r] = decoded;  // the position the segment's first entry predicts
    }
    counts.push_back(int64_t(segments[r].size()));
    if (first[r] % P == 0) {  // the segment starts patch k: the global model steps first
      gslots.push_back(slots[r]);
      gk.push_back(first[r] / P);
    }
    n = std::max(n, segments[r].size());
  }
  if (!wrow.empty()) history_.index_put_({longs(wrow, dev), longs(wpos, dev)}, longs(wbyte, dev));
  if (!gslots.empty()) rows_global(gslots, gk);
  // Local input at position q (p = q mod P in its patch): the patch context's slice p + the embedding of
  // byte q - 1 (the pad at p = 0). Padding entries repeat the segment's last position.
  std::vector<int64_t> ctx_at, prev_at, pad_at, p0, last;
  for (int64_t r = 0; r < R; ++r) {
    p0.push_back(first[r] % P);
    for (size_t i = 0; i < n; ++i) {
      const int64_t q = first[r] + int64_t(std::min(i, size_t(counts[r] - 1)));
      ctx_at.push_back(slots[r] * P + q % P);
      prev_at.push_back(slots[r] * T + std::max<int64_t>(0, q - 1));
      pad_at.push_back(q % P == 0);
    }
    last.push_back(r * int64_t(n) + counts[r] - 1);
  }
  const int64_t N = int64_t(n);
  auto ctx = patch_ctx_.view({-1, DL}).index_select(0, longs(ctx_at, dev));           // (R*n, D_L)
  auto prev = local_embed(history_.view({-1}).index_select(0, longs(prev_at, dev)));  // (R*n, D_L)
  prev = torch::where(longs(pad_at, dev).view({R * N, 1}).to(torch::kBool),
                      local_pad.view({1, DL}).to(prev.scalar_type()), prev);
  auto rb = make_row_batch(slots, history_.size(0), p0, counts, N, P, dev);
  auto y = local_model->rows((ctx + prev).view({R, N, DL}), rb, local_caches_);  // (R, n, D_L)
  auto out = N == 1 ? y.view({R, DL}) : y.reshape({R * N, DL}).index_select(0, longs(last, dev));
  return project(head, out);  // (R, 256) for each segment's last position
}

torch::Tensor MegabyteImpl::rows_feed(const std::vector<RowFeed>& feeds) {
  check_row_feeds(feeds, cfg_.context - 1, "bytes");
  const int64_t R = int64_t(feeds.size()), P = cfg_.patch_size;
  // Row r's entries (the restart if any, then its bytes) cut into segments inside one patch each: a segment
  // starts at each position that opens a patch. Call i of rows_segment() takes every row's segment i.
  std::vector<std::vector<std::vector<int64_t>>> segments(static_cast<size_t>(R));
  size_t most = 0;
  for (int64_t r = 0; r < R; ++r) {
    int64_t q = feeds[r].restart ? -1 : row_decoded_[size_t(feeds[r].slot)];  // the position before the next
    auto add = [&](int64_t entry, int64_t position) {
      if (segments[r].empty() || position % P == 0) segments[r].emplace_back();
      segments[r].back().push_back(entry);
    };
    if (feeds[r].restart) add(kStartEntry, ++q);
    for (int64_t b : feeds[r].ids) {
      if (b < 0 || b >= kByteVocab) throw Error("row decoding: byte " + std::to_string(b) + " is out of range");
      add(b, ++q);
    }
    most = std::max(most, segments[r].size());
  }
  std::vector<torch::Tensor> last(static_cast<size_t>(R));
  for (size_t i = 0; i < most; ++i) {
    std::vector<int64_t> slots, which;
    std::vector<std::vector<int64_t>> now;
    for (int64_t r = 0; r < R; ++r)
      if (i < segments[r].size()) {
        slots.push_back(feeds[r].slot);
        now.push_back(segments[r][i]);
        which.push_back(r);
      }
    auto logits = rows_segment(slots, now);  // (rows with a segment i, 256)
    if (most == 1) return logits;            // one call: already in the feeds' order
    for (size_t j = 0; j < which.size(); ++j)
      if (i + 1 == segments[which[j]].size()) last[which[j]] = logits[int64_t(j)];
  }
  return torch::stack(last);  // (R, 256)
}

int64_t MegabyteImpl::rows_keep(int64_t from, int64_t to, int64_t bytes) {
  // Kept: m - 1 bytes with m a multiple of P, so that the next byte fed closes patch m/P - 1 and steps the
  // global model from the kept global entries (patches 0 .. m/P - 1); the local state is not needed then.
  const int64_t P = cfg_.patch_size, have = row_decoded_.at(size_t(from));
  if (have == kRowNotStarted) return kRowNotStarted;
  const int64_t m = (std::min(bytes, have) + 1) / P * P;
  if (m < P) return kRowNotStarted;
  if (from != to) {
    history_[to].narrow(0, 0, m - 1).copy_(history_[from].narrow(0, 0, m - 1));
    for (auto& c : global_caches_) {
      c.k[to].narrow(1, 0, m / P).copy_(c.k[from].narrow(1, 0, m / P));
      c.v[to].narrow(1, 0, m / P).copy_(c.v[from].narrow(1, 0, m / P));
    }
  }
  row_decoded_.at(size_t(to)) = m - 1;
  return m - 1;
}

}  // namespace bytelm
