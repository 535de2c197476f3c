// blocks_rows.cpp — row decoding in the shared blocks (declared in blocks.h): every row of a KV cache at
// its own position, so that rows of one batch can prefill, decode, restart, join and leave independently.
// One call takes R rows of n entries; the real entries' keys and values are scattered into their rows at
// their positions, and each entry attends to its own row's keys up to its position (a boolean mask).
// Shapes: R rows in the call, S rows in the cache, n entries per row, H heads, Dh head dim, C capacity.
#include <torch/torch.h>

#include <algorithm>

#include "model/blocks.h"
#include "util/error.h"

namespace bytelm {

torch::Tensor long_tensor(const std::vector<int64_t>& v, const torch::Device& device) {
  auto t = torch::from_blob(const_cast<int64_t*>(v.data()), {int64_t(v.size())}, torch::kLong);
  return t.to(device, /*non_blocking=*/false, /*copy=*/true);  // owns its data (a copy on the CPU too)
}

void copy_cache_rows(std::vector<KVCache>& caches, int64_t from, int64_t to, int64_t n) {
  if (from == to) return;
  for (auto& c : caches) {
    c.k[to].narrow(1, 0, n).copy_(c.k[from].narrow(1, 0, n));
    c.v[to].narrow(1, 0, n).copy_(c.v[from].narrow(1, 0, n));
  }
}

torch::Tensor row_entries(const torch::Tensor& x, const RowBatch& rb) {
  const int64_t R = x.size(0), H = x.size(1), n = x.size(2);
  return x.transpose(1, 2).reshape({R * n, H, x.size(3)}).index_select(0, rb.write_src);
}

RowBatch make_row_batch(const std::vector<int64_t>& rows, int64_t slots, const std::vector<int64_t>& pos0,
                        const std::vector<int64_t>& counts, int64_t n, int64_t capacity, const torch::Device& device) {
  const int64_t R = int64_t(pos0.size());
  RowBatch rb;
  rb.capacity = capacity;
  std::vector<int64_t> positions(size_t(R * n)), wrow, wpos, wsrc;
  bool in_order = R == slots;  // every cache row, in order: attention reads the caches without a gather
  for (int64_t r = 0; r < R; ++r) {
    if (pos0[r] + counts[r] > capacity)
      throw Error("decoding past the context: a row needs " + std::to_string(pos0[r] + counts[r]) +
                  " positions, capacity " + std::to_string(capacity));
    rb.span = std::max(rb.span, std::min(capacity, pos0[r] + n));
    for (int64_t i = 0; i < n; ++i) {
      positions[size_t(r * n + i)] = std::min(pos0[r] + i, capacity - 1);
      if (i >= counts[r]) continue;
      wrow.push_back(rows[size_t(r)]);
      wpos.push_back(pos0[r] + i);
      wsrc.push_back(r * n + i);
    }
  }
  for (int64_t r = 0; r < R && in_order; ++r) in_order = rows[size_t(r)] == r;
  if (!in_order) rb.rows = long_tensor(rows, device);
  rb.positions = long_tensor(positions, device).view({R, n});
  rb.writes = !wrow.empty();
  if (rb.writes) {
    const int64_t M = int64_t(wrow.size());
    rb.write_row = long_tensor(wrow, device);
    rb.write_pos = long_tensor(wpos, device);
    rb.write_src = long_tensor(wsrc, device);
  }
  auto keys = torch::arange(rb.span, torch::TensorOptions().dtype(torch::kLong).device(device));
  rb.keep = keys.view({1, 1, 1, rb.span}).le(rb.positions.view({R, 1, n, 1}));  // (R, 1, n, span)
  return rb;
}

torch::Tensor Rotary::apply_rows(const torch::Tensor& x, const torch::Tensor& positions, int64_t capacity) {
  if (!enabled()) return x;
  ensure(capacity, x.device());
  const int64_t R = x.size(0), n = x.size(2), half = head_dim_ / 2;
  auto flat = positions.reshape({-1});
  auto cos = cos_.index_select(0, flat).view({R, 1, n, half});  // (R, 1, n, Dh/2)
  auto sin = sin_.index_select(0, flat).view({R, 1, n, half});
  return rotate(x, cos, sin, x.size(1));  // one table per row, for its H heads
}

torch::Tensor AttentionImpl::rows(const torch::Tensor& x, Rotary& rope, const RowBatch& rb, KVCache& cache) {
  const int64_t R = x.size(0), n = x.size(1), D = x.size(2);
  auto split = [&](const torch::Tensor& t) { return t.view({R, n, heads, head_dim}).transpose(1, 2); };
  auto q = rope.apply_rows(split(project(q_proj, x)), rb.positions, rb.capacity);  // (R, H, n, Dh)
  auto k = rope.apply_rows(split(project(k_proj, x)), rb.positions, rb.capacity);
  auto v = split(project(v_proj, x));
  if (rb.writes) {
    using torch::indexing::Slice;
    cache.k.index_put_({rb.write_row, Slice(), rb.write_pos}, row_entries(k, rb).to(cache.k.scalar_type()));
    cache.v.index_put_({rb.write_row, Slice(), rb.write_pos}, row_entries(v, rb).to(cache.v.scalar_type()));
  }
  auto keys = cache.k.narrow(2, 0, rb.span), values = cache.v.narrow(2, 0, rb.span);  // (S, H, span, Dh)
  if (rb.rows.defined()) {
    keys = keys.index_select(0, rb.rows);  // (R, H, span, Dh)
    values = values.index_select(0, rb.rows);
  }
  auto y = attention_keep(q, keys, values, rb.keep);  // (R, H, n, Dh)
  return project(o_proj, y.transpose(1, 2).reshape({R, n, D}));
}

torch::Tensor BlockImpl::rows(const torch::Tensor& x, Rotary& rope, const RowBatch& rb, KVCache& cache) {
  auto h = x + self_attn->rows(input_layernorm(x), rope, rb, cache);
  return h + mlp(post_attention_layernorm(h));
}

torch::Tensor StackImpl::rows(const torch::Tensor& x, const RowBatch& rb, std::vector<KVCache>& caches) {
  auto h = x;
  for (size_t i = 0; i < layers->size(); ++i) h = layers[i]->as<BlockImpl>()->rows(h, rope, rb, caches[i]);
  return norm ? norm(h) : h;
}

}  // namespace bytelm
