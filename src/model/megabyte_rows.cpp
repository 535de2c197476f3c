// megabyte_rows.cpp — MEGABYTE's row decoding (model.h, rows_feed): every row at its own byte position.
// One call advances its rows one position at a time; at each position the global model steps only for the
// rows whose next byte starts a patch (each at its own patch index), then the local model steps for every row
// at its own position in its patch. The paper's main-text model only (the variants decode with feed()).
// Shapes: S rows in the caches, R rows in a call, G rows stepping the global model, P patch size,
// T context, D_G global width per byte, D_L local width.
#include <torch/torch.h>

#include <algorithm>

#include "model/megabyte.h"
#include "util/device.h"
#include "util/error.h"

namespace bytelm {

namespace {
constexpr int64_t kStartEntry = -1;  // rows_position(): restart the row

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

torch::Tensor MegabyteImpl::rows_position(const std::vector<int64_t>& slots, const std::vector<int64_t>& entries) {
  const int64_t R = int64_t(slots.size()), P = cfg_.patch_size, T = cfg_.context, DL = cfg_.local.width;
  const auto dev = head->weight.device();
  std::vector<int64_t> wrow, wpos, wbyte, gslots, gk;
  std::vector<int64_t> next(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) {
    int64_t& decoded = row_decoded_[size_t(slots[r])];
    if (entries[r] == kStartEntry) {
      decoded = 0;
    } else {
      wrow.push_back(slots[r]);
      wpos.push_back(decoded);
      wbyte.push_back(entries[r]);
      ++decoded;
    }
    next[r] = decoded;  // the position whose logits this call produces
    if (decoded % P == 0) {
      gslots.push_back(slots[r]);
      gk.push_back(decoded / P);
    }
  }
  if (!wrow.empty()) history_.index_put_({longs(wrow, dev), longs(wpos, dev)}, longs(wbyte, dev));
  if (!gslots.empty()) rows_global(gslots, gk);
  // Local input at position p of a patch: its slice of the patch context + the previous byte's embedding
  // (the pad at p = 0).
  std::vector<int64_t> ctx_at, prev_at, p, first;
  for (int64_t r = 0; r < R; ++r) {
    p.push_back(next[r] % P);
    ctx_at.push_back(slots[r] * P + p.back());
    prev_at.push_back(slots[r] * T + std::max<int64_t>(0, next[r] - 1));
    first.push_back(p.back() == 0);
  }
  auto ctx = patch_ctx_.view({-1, DL}).index_select(0, longs(ctx_at, dev));           // (R, D_L)
  auto prev = local_embed(history_.view({-1}).index_select(0, longs(prev_at, dev)));  // (R, D_L)
  prev = torch::where(longs(first, dev).view({R, 1}).to(torch::kBool), local_pad.view({1, DL}).to(prev.scalar_type()),
                      prev);
  auto rb = make_row_batch(slots, history_.size(0), p, std::vector<int64_t>(size_t(R), 1), 1, P, dev);
  auto y = local_model->rows((ctx + prev).view({R, 1, DL}), rb, local_caches_);  // (R, 1, D_L)
  return project(head, y).view({R, kByteVocab});
}

torch::Tensor MegabyteImpl::rows_feed(const std::vector<RowFeed>& feeds) {
  check_row_feeds(feeds, cfg_.context - 1, "bytes");
  const int64_t R = int64_t(feeds.size());
  // Row r's entries: the restart (if any), then its bytes; one call of rows_position() per entry index.
  std::vector<std::vector<int64_t>> entries(static_cast<size_t>(R));
  size_t longest = 0;
  for (int64_t r = 0; r < R; ++r) {
    if (feeds[r].restart) entries[r].push_back(kStartEntry);
    for (int64_t b : feeds[r].ids) {
      if (b < 0 || b >= kByteVocab) throw Error("row decoding: byte " + std::to_string(b) + " is out of range");
      entries[r].push_back(b);
    }
    longest = std::max(longest, entries[r].size());
  }
  if (longest == 1) {  // one entry per row (decoding): the logits are already in the feeds' order
    std::vector<int64_t> slots, now;
    for (int64_t r = 0; r < R; ++r) slots.push_back(feeds[r].slot), now.push_back(entries[r][0]);
    return rows_position(slots, now);
  }
  std::vector<torch::Tensor> last(static_cast<size_t>(R));
  for (size_t i = 0; i < longest; ++i) {
    std::vector<int64_t> slots, now, which;
    for (int64_t r = 0; r < R; ++r)
      if (i < entries[r].size()) {
        slots.push_back(feeds[r].slot);
        now.push_back(entries[r][i]);
        which.push_back(r);
      }
    auto logits = rows_position(slots, now);  // (rows with an entry i, 256)
    for (size_t j = 0; j < which.size(); ++j)
      if (i + 1 == entries[which[j]].size()) last[which[j]] = logits[int64_t(j)];
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
