// megabyte_rows.cpp — MEGABYTE's row decoding (model.h, rows_feed): every row at its own byte position, for
// the paper's main-text model and its variants. A call advances its rows by segments, the positions of a row
// that lie in one group of the local model (a patch, or a unit of the last middle level): for each segment
// the global model steps only for the rows whose segment opens a patch (each at its own patch index), each
// middle level only for the rows whose segment opens one of its units, then the local model runs every
// row's segment at once, from its own position in its group. A decoding byte is a segment of one; a prompt
// chunk costs one call per group it touches. The conv encoder reads a window of each row's history before
// its patch; cross-patch attention lends each row's finished group's last keys to its next group.
// Shapes: S rows in the caches, R rows in a call, G rows stepping a level, n entries per segment, P patch
// size, T context, D_G global width per byte, D_L local width, U the local group (P, or the last level's unit).
#include <torch/torch.h>

#include <algorithm>

#include "model/megabyte.h"
#include "util/device.h"
#include "util/error.h"

namespace bytelm {

namespace {
constexpr int64_t kStartEntry = -1;  // rows_segment(): restart the row
}  // namespace

void MegabyteImpl::rows_begin(int64_t slots) {
  start(slots);  // caches and decoding tensors for `slots` rows
  row_decoded_.assign(size_t(slots), kRowNotStarted);
  row_has_prev_.assign(size_t(slots), 0);
}

torch::Tensor MegabyteImpl::rows_global(const std::vector<int64_t>& slots, const std::vector<int64_t>& k) {
  const int64_t G = int64_t(slots.size()), P = cfg_.patch_size, DG = cfg_.global_byte_width(), T = cfg_.context;
  const auto dev = head->weight.device();
  // Patch k-1's bytes, after `field` bytes before it that the conv encoder reads (zero embeddings before the
  // sequence: what the conv's own left padding gives).
  const int64_t field = conv ? conv->receptive_field() : 0, W = field + P;
  std::vector<int64_t> at(size_t(G * W)), pos(size_t(G * W)), before(size_t(G * W)), first;
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t i = 0; i < W; ++i) {
      const int64_t q = std::max<int64_t>(0, k[g] - 1) * P - field + i;
      at[size_t(g * W + i)] = slots[g] * T + std::max<int64_t>(0, q);
      pos[size_t(g * W + i)] = std::max<int64_t>(0, q);
      before[size_t(g * W + i)] = q < 0;
    }
    first.push_back(k[g] == 0);
  }
  auto emb = global_embed(history_.view({-1}).index_select(0, long_tensor(at, dev))) +  // (G*W, D_G)
             global_pos->weight.index_select(0, long_tensor(pos, dev));
  emb = emb.masked_fill(long_tensor(before, dev).view({G * W, 1}).to(torch::kBool), 0).view({G, W, DG});
  if (conv) emb = conv(emb);
  emb = emb.narrow(1, field, P);  // (G, P, D_G)
  auto pad = global_pad.view({1, -1}).to(emb.scalar_type());
  auto in = torch::where(long_tensor(first, dev).view({G, 1}).to(torch::kBool), pad, emb.reshape({G, P * DG}));
  auto rb = make_row_batch(slots, history_.size(0), k, std::vector<int64_t>(size_t(G), 1), 1, T / P, dev);
  return global_model->rows(in.view({G, 1, P * DG}), rb, global_caches_).view({G, -1});  // (G, P*D_G)
}

void MegabyteImpl::rows_units(const std::vector<int64_t>& slots, const std::vector<int64_t>& first) {
  const int64_t P = cfg_.patch_size, T = cfg_.context, S_rows = history_.size(0);
  const auto dev = head->weight.device();
  // Rows whose segment opens a patch step the global model; its output is the context of the level below.
  std::vector<int64_t> upper_slots, k;
  for (size_t r = 0; r < slots.size(); ++r)
    if (first[r] % P == 0) upper_slots.push_back(slots[r]), k.push_back(first[r] / P);
  torch::Tensor upper = upper_slots.empty() ? torch::Tensor() : rows_global(upper_slots, k);  // (G, W_up)
  int64_t above = P;
  for (size_t i = 0; i <= levels.size(); ++i) {
    const bool local = i == levels.size();
    const int64_t S = local ? 1 : levels[i]->cfg.patch_size, n = above / S;
    auto& ctx = local ? patch_ctx_ : level_ctx_[i];  // (S_rows, n, W)
    if (upper.defined()) {
      const int64_t G = int64_t(upper_slots.size());
      auto slices = (local ? global_to_local : levels[i]->from_above)(upper.view({G, n, -1}));
      ctx.index_copy_(0, long_tensor(upper_slots, dev), slices.to(ctx.scalar_type()));
    }
    if (local) return;
    // Rows whose segment opens a unit of this level step it at that unit u: the slice from above + the
    // embedding of unit u-1 (its S bytes), the pad at u = 0.
    std::vector<int64_t> step_slots, units, ctx_at, bytes_at, pad_at;
    for (size_t r = 0; r < slots.size(); ++r) {
      if (first[r] % S != 0) continue;
      const int64_t u = (first[r] % above) / S;
      step_slots.push_back(slots[r]);
      units.push_back(u);
      ctx_at.push_back(slots[r] * n + u);
      pad_at.push_back(u == 0);
      for (int64_t j = 0; j < S; ++j) bytes_at.push_back(slots[r] * T + std::max<int64_t>(0, first[r] - S + j));
    }
    upper_slots = step_slots;
    upper = torch::Tensor();
    above = S;
    if (step_slots.empty()) continue;
    const int64_t L = int64_t(step_slots.size()), Wl = levels[i]->cfg.stack.width;
    auto emb = levels[i]->embed(history_.view({-1}).index_select(0, long_tensor(bytes_at, dev))).view({L, Wl});
    emb = torch::where(long_tensor(pad_at, dev).view({L, 1}).to(torch::kBool),
                       levels[i]->pad.view({1, Wl}).to(emb.scalar_type()), emb);
    auto x = ctx.view({-1, Wl}).index_select(0, long_tensor(ctx_at, dev)) + emb;  // (L, W)
    auto rb = make_row_batch(step_slots, S_rows, units, std::vector<int64_t>(size_t(L), 1), 1, n, dev);
    upper = levels[i]->model->rows(x.view({L, 1, Wl}), rb, level_caches_[i]).view({L, -1});
  }
}

torch::Tensor MegabyteImpl::rows_segment(const std::vector<int64_t>& slots,
                                         const std::vector<std::vector<int64_t>>& segments, bool every_id) {
  const int64_t R = int64_t(slots.size()), U = cfg_.local_patch_size(), T = cfg_.context, DL = cfg_.local.width;
  const auto dev = head->weight.device();
  std::vector<int64_t> wrow, wpos, wbyte, first(static_cast<size_t>(R)), counts, new_group;
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
    if (first[r] % U == 0 && first[r] > 0) new_group.push_back(slots[r]);
    row_has_prev_[size_t(slots[r])] = first[r] >= U;
    n = std::max(n, segments[r].size());
  }
  if (!wrow.empty()) history_.index_put_({long_tensor(wrow, dev), long_tensor(wpos, dev)}, long_tensor(wbyte, dev));
  rows_units(slots, first);
  // Local input at position q (p = q mod U in its group): the group context's slice p + the embedding of
  // byte q - 1 (the pad at p = 0). Padding entries repeat the segment's last position.
  std::vector<int64_t> ctx_at, prev_at, pad_at, p0, last, has_prev;
  for (int64_t r = 0; r < R; ++r) {
    p0.push_back(first[r] % U);
    has_prev.push_back(row_has_prev_[size_t(slots[r])]);
    for (size_t i = 0; i < n; ++i) {
      const int64_t q = first[r] + int64_t(std::min(i, size_t(counts[r] - 1)));
      ctx_at.push_back(slots[r] * U + q % U);
      prev_at.push_back(slots[r] * T + std::max<int64_t>(0, q - 1));
      pad_at.push_back(q % U == 0);
    }
    last.push_back(r * int64_t(n) + counts[r] - 1);
  }
  const int64_t N = int64_t(n);
  auto ctx = patch_ctx_.view({-1, DL}).index_select(0, long_tensor(ctx_at, dev));           // (R*n, D_L)
  auto prev = local_embed(history_.view({-1}).index_select(0, long_tensor(prev_at, dev)));  // (R*n, D_L)
  prev = torch::where(long_tensor(pad_at, dev).view({R * N, 1}).to(torch::kBool),
                      local_pad.view({1, DL}).to(prev.scalar_type()), prev);
  auto rb = make_row_batch(slots, history_.size(0), p0, counts, N, U, dev);
  auto x = (ctx + prev).view({R, N, DL});
  torch::Tensor y;  // (R, n, D_L)
  if (cfg_.cross_patch > 0) {
    if (!new_group.empty())
      cross_patch_next_group_rows(*local_model, cross_caches_, long_tensor(new_group, dev), U, cfg_.cross_patch);
    y = cross_patch_rows(*local_model, cross_caches_, x, rb, long_tensor(has_prev, dev).to(torch::kBool),
                         cfg_.cross_patch);
  } else {
    y = local_model->rows(x, rb, local_caches_);
  }
  if (every_id) return project(head, y);  // (R, n, 256)
  auto out = N == 1 ? y.view({R, DL}) : y.reshape({R * N, DL}).index_select(0, long_tensor(last, dev));
  return project(head, out);  // (R, 256) for each segment's last position
}

torch::Tensor MegabyteImpl::rows_feed(const std::vector<RowFeed>& feeds, bool every_id) {
  check_row_feeds(feeds, cfg_.context - 1, "bytes", kByteVocab);
  const int64_t R = int64_t(feeds.size()), U = cfg_.local_patch_size();
  // Row r's entries (the restart if any, then its bytes) cut into segments inside one local group each: a
  // segment starts at each position that opens a group. Call i of rows_segment() takes every row's segment i.
  std::vector<std::vector<std::vector<int64_t>>> segments(static_cast<size_t>(R));
  size_t most = 0;
  for (int64_t r = 0; r < R; ++r) {
    int64_t q = feeds[r].restart ? -1 : row_decoded_[size_t(feeds[r].slot)];  // the position before the next
    auto add = [&](int64_t entry, int64_t position) {
      if (segments[r].empty() || position % U == 0) segments[r].emplace_back();
      segments[r].back().push_back(entry);
    };
    if (feeds[r].restart) add(kStartEntry, ++q);
    for (int64_t b : feeds[r].ids) add(b, ++q);
    most = std::max(most, segments[r].size());
  }
  std::vector<torch::Tensor> last(static_cast<size_t>(R));
  std::vector<std::vector<torch::Tensor>> every(static_cast<size_t>(R));  // every_id: each segment's logits
  for (size_t i = 0; i < most; ++i) {
    std::vector<int64_t> slots, which;
    std::vector<std::vector<int64_t>> now;
    for (int64_t r = 0; r < R; ++r)
      if (i < segments[r].size()) {
        slots.push_back(feeds[r].slot);
        now.push_back(segments[r][i]);
        which.push_back(r);
      }
    auto logits = rows_segment(slots, now, every_id);  // (rows with a segment i, [n,] 256)
    if (most == 1) return logits;                      // one call: already in the feeds' order
    for (size_t j = 0; j < which.size(); ++j) {
      const size_t r = size_t(which[j]);
      if (every_id) every[r].push_back(logits[int64_t(j)].narrow(0, 0, int64_t(segments[r][i].size())));
      if (!every_id && i + 1 == segments[r].size()) last[r] = logits[int64_t(j)];
    }
  }
  if (!every_id) return torch::stack(last);  // (R, 256)
  std::vector<torch::Tensor> rows;           // each row's entries in order
  int64_t n = 0;
  for (auto& parts : every) n = std::max(n, rows.emplace_back(torch::cat(parts)).size(0));
  auto out = torch::zeros({R, n, kByteVocab}, rows[0].options());  // (R, n, 256)
  for (int64_t r = 0; r < R; ++r) out[r].narrow(0, 0, rows[size_t(r)].size(0)).copy_(rows[size_t(r)]);
  return out;
}

int64_t MegabyteImpl::rows_keep(int64_t from, int64_t to, int64_t bytes) {
  // Kept: m - 1 bytes with m a multiple of P, so that the next byte fed closes patch m/P - 1 and steps the
  // global model from the kept global entries (patches 0 .. m/P - 1); every lower level starts a new group
  // then, so their state is not needed. Not with cross-patch attention: its next group borrows keys of
  // the finished one, which the local caches no longer hold.
  const int64_t P = cfg_.patch_size, have = row_decoded_.at(size_t(from));
  if (have == kRowNotStarted || cfg_.cross_patch > 0) return kRowNotStarted;
  const int64_t m = (std::min(bytes, have) + 1) / P * P;
  if (m < P) return kRowNotStarted;
  if (from != to) {
    history_[to].narrow(0, 0, m - 1).copy_(history_[from].narrow(0, 0, m - 1));
    copy_cache_rows(global_caches_, from, to, m / P);
  }
  row_decoded_.at(size_t(to)) = m - 1;
  return m - 1;
}

}  // namespace bytelm
