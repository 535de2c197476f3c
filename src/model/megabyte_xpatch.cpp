// megabyte_xpatch.cpp — cross-patch attention for MEGABYTE's local model (see megabyte_xpatch.h).
#include "model/megabyte_xpatch.h"

#include "util/device.h"

namespace bytelm {

namespace {
// (rows, T, D) -> (rows, H, T, Dh)
torch::Tensor heads_of(const torch::Tensor& t, int64_t H) {
  return t.view({t.size(0), t.size(1), H, t.size(2) / H}).transpose(1, 2);
}
}  // namespace

torch::Tensor cross_patch_forward(StackImpl& stack, const torch::Tensor& x, int64_t r) {
  const int64_t B = x.size(0), G = x.size(1), n = x.size(2), D = x.size(3), H = stack.cfg.heads;
  auto h = x.reshape({B * G, n, D});
  // keep (1, G, 1, n, r + n) -> (G, 1, n, r + n): borrowed keys for every group but the first, own keys causally.
  auto opts = torch::TensorOptions().dtype(torch::kBool).device(x.device());
  auto borrowed = torch::ones({G, 1, n, r}, opts);
  if (r > 0) borrowed[0].fill_(false);
  auto own = torch::ones({n, n}, opts).tril().view({1, 1, n, n}).expand({G, 1, n, n});
  auto keep = torch::cat({borrowed, own}, -1).unsqueeze(0).expand({B, G, 1, n, r + n}).reshape({B * G, 1, n, r + n});
  for (size_t i = 0; i < stack.layers->size(); ++i) {
    auto* block = stack.layers[i]->as<BlockImpl>();
    auto& attn = *block->self_attn;
    auto normed = block->input_layernorm(h);                         // (B*G, n, D)
    auto q = stack.rope.apply(heads_of(attn.q_proj(normed), H), r);  // (B*G, H, n, Dh)
    auto k_raw = heads_of(attn.k_proj(normed), H);
    auto v = heads_of(attn.v_proj(normed), H);
    auto k = stack.rope.apply(k_raw, r);
    if (r > 0) {
      // The previous group's last r keys (rotated at 0..r-1) and values, shifted one group along G.
      auto shift = [&](const torch::Tensor& t) {  // (B*G, H, r, Dh) -> same, from group g-1
        auto g = t.view({B, G, H, r, t.size(-1)});
        return torch::cat({torch::zeros_like(g.narrow(1, 0, 1)), g.narrow(1, 0, G - 1)}, 1).view(t.sizes());
      };
      k = torch::cat({shift(stack.rope.apply(k_raw.narrow(2, n - r, r), 0)), k}, 2);  // (B*G, H, r+n, Dh)
      v = torch::cat({shift(v.narrow(2, n - r, r)), v}, 2);
    }
    auto y = attention_keep(q, k, v, keep);  // (B*G, H, n, Dh)
    h = h + attn.o_proj(y.transpose(1, 2).reshape({B * G, n, D}));
    h = h + block->mlp(block->post_attention_layernorm(h));
  }
  return stack.norm ? stack.norm(h) : h;
}

CrossPatchCache cross_patch_cache(StackImpl& stack, int64_t batch, int64_t n, int64_t r) {
  auto w = stack.parameters().front();
  auto opts = torch::TensorOptions().dtype(compute_dtype(w.device(), w.scalar_type())).device(w.device());
  const int64_t H = stack.cfg.heads, Dh = stack.cfg.width / H;
  CrossPatchCache c;
  for (size_t i = 0; i < stack.layers->size(); ++i) {
    c.k.push_back(torch::zeros({batch, H, r + n, Dh}, opts));
    c.v.push_back(torch::zeros({batch, H, r + n, Dh}, opts));
    c.k_raw.push_back(torch::zeros({batch, H, n, Dh}, opts));
  }
  return c;
}

void cross_patch_next_group(StackImpl& stack, CrossPatchCache& c, int64_t n, int64_t r) {
  if (r == 0) return;
  for (size_t i = 0; i < c.k.size(); ++i) {
    c.k[i].narrow(2, 0, r).copy_(stack.rope.apply(c.k_raw[i].narrow(2, n - r, r), 0));
    c.v[i].narrow(2, 0, r).copy_(c.v[i].narrow(2, n, r));  // own slots [r + n - r, r + n) = [n, n + r)
  }
  c.has_prev = true;
}

torch::Tensor cross_patch_step(StackImpl& stack, CrossPatchCache& c, const torch::Tensor& x, int64_t p, int64_t r) {
  const int64_t B = x.size(0), D = x.size(2), H = stack.cfg.heads;
  auto h = x;
  for (size_t i = 0; i < stack.layers->size(); ++i) {
    auto* block = stack.layers[i]->as<BlockImpl>();
    auto& attn = *block->self_attn;
    auto normed = block->input_layernorm(h);                                      // (B, 1, D)
    auto q = stack.rope.apply(heads_of(project(attn.q_proj, normed), H), r + p);  // (B, H, 1, Dh)
    auto k_raw = heads_of(project(attn.k_proj, normed), H);
    c.k_raw[i].narrow(2, p, 1).copy_(k_raw);
    c.k[i].narrow(2, r + p, 1).copy_(stack.rope.apply(k_raw, r + p));
    c.v[i].narrow(2, r + p, 1).copy_(heads_of(project(attn.v_proj, normed), H));
    const int64_t first = c.has_prev ? 0 : r;  // borrowed slots only after group 0
    auto y = attention(q, c.k[i].narrow(2, first, r + p + 1 - first), c.v[i].narrow(2, first, r + p + 1 - first),
                       /*causal=*/false);  // (B, H, 1, Dh)
    h = h + project(attn.o_proj, y.transpose(1, 2).reshape({B, 1, D}));
    h = h + block->mlp(block->post_attention_layernorm(h));
  }
  return stack.norm ? stack.norm(h) : h;
}

void cross_patch_next_group_rows(StackImpl& stack, CrossPatchCache& c, const torch::Tensor& rows, int64_t n,
                                 int64_t r) {
  if (r == 0) return;
  for (size_t i = 0; i < c.k.size(); ++i) {
    auto lent = stack.rope.apply(c.k_raw[i].index_select(0, rows).narrow(2, n - r, r), 0);  // (R, H, r, Dh)
    c.k[i].narrow(2, 0, r).index_copy_(0, rows, lent);
    c.v[i].narrow(2, 0, r).index_copy_(0, rows, c.v[i].index_select(0, rows).narrow(2, n, r));
  }
}

torch::Tensor cross_patch_rows(StackImpl& stack, CrossPatchCache& c, const torch::Tensor& x, const RowBatch& rb,
                               const torch::Tensor& has_prev, int64_t r) {
  using torch::indexing::Slice;
  const int64_t R = x.size(0), m = x.size(1), D = x.size(2), H = stack.cfg.heads, n = rb.capacity;
  // Own keys at slots r + p; the borrowed ones [0, r) where the row has a previous group.
  auto at = rb.positions + r;                                                              // (R, m)
  auto keep = torch::cat({has_prev.view({R, 1, 1, 1}).expand({R, 1, m, r}), rb.keep}, 3);  // (R, 1, m, r + span)
  auto h = x;
  for (size_t i = 0; i < stack.layers->size(); ++i) {
    auto* block = stack.layers[i]->as<BlockImpl>();
    auto& attn = *block->self_attn;
    auto normed = block->input_layernorm(h);                                               // (R, m, D)
    auto q = stack.rope.apply_rows(heads_of(project(attn.q_proj, normed), H), at, r + n);  // (R, H, m, Dh)
    auto k_raw = heads_of(project(attn.k_proj, normed), H);
    auto k = stack.rope.apply_rows(k_raw, at, r + n);
    auto v = heads_of(project(attn.v_proj, normed), H);
    if (rb.writes) {
      c.k_raw[i].index_put_({rb.write_row, Slice(), rb.write_pos}, row_entries(k_raw, rb).to(c.k_raw[i].scalar_type()));
      c.k[i].index_put_({rb.write_row, Slice(), rb.write_pos + r}, row_entries(k, rb).to(c.k[i].scalar_type()));
      c.v[i].index_put_({rb.write_row, Slice(), rb.write_pos + r}, row_entries(v, rb).to(c.v[i].scalar_type()));
    }
    auto keys = c.k[i].narrow(2, 0, r + rb.span), values = c.v[i].narrow(2, 0, r + rb.span);
    if (rb.rows.defined()) {
      keys = keys.index_select(0, rb.rows);
      values = values.index_select(0, rb.rows);
    }
    auto y = attention_keep(q, keys, values, keep);  // (R, H, m, Dh)
    h = h + project(attn.o_proj, y.transpose(1, 2).reshape({R, m, D}));
    h = h + block->mlp(block->post_attention_layernorm(h));
  }
  return stack.norm ? stack.norm(h) : h;
}

}  // namespace bytelm
