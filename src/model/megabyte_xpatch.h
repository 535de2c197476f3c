// megabyte_xpatch.h — MEGABYTE's cross-patch attention (paper section 2.3, Table 10): every local layer
// attends to the keys/values of its own patch (causally) and also to the last r keys/values of the
// previous patch (the first patch of a sequence has none). It runs a Stack's own blocks (same weights,
// same names), only the attention's key set differs, so a model can switch it on without new parameters.
// Rotary positions: the r borrowed keys sit at positions 0..r-1 and the patch's own at r..r+n-1, so their
// relative distances are the true byte distances.
// Shapes: B batch, G groups (patches the local model runs over), n bytes per group, r borrowed keys,
// D local width, H heads, Dh head dim.
#pragma once
#include "model/blocks.h"

namespace bytelm {

// x: (B, G, n, D) local inputs of consecutive groups -> (B * G, n, D) outputs (final norm applied).
torch::Tensor cross_patch_forward(StackImpl& stack, const torch::Tensor& x, int64_t r);

// Decoding state: per layer, the rotated keys and values of the borrowed slots [0, r) and the current
// group's slots [r, r + n), and the current group's unrotated keys (re-rotated when they are borrowed).
struct CrossPatchCache {
  std::vector<torch::Tensor> k, v;   // (B, H, r + n, Dh)
  std::vector<torch::Tensor> k_raw;  // (B, H, n, Dh)
  bool has_prev = false;             // the borrowed slots hold a previous group
};

// Fresh state for batch B (no previous group).
CrossPatchCache cross_patch_cache(StackImpl& stack, int64_t batch, int64_t n, int64_t r);
// A new group starts: the last r keys/values of the finished group become the borrowed ones.
void cross_patch_next_group(StackImpl& stack, CrossPatchCache& cache, int64_t n, int64_t r);
// One byte at group position p: x (B, 1, D) -> (B, 1, D) (final norm applied).
torch::Tensor cross_patch_step(StackImpl& stack, CrossPatchCache& cache, const torch::Tensor& x, int64_t p, int64_t r);

// Row decoding (every row at its own group position; blocks.h, RowBatch). A new group starts for cache rows
// `rows` (R): each one's finished group lends its last r keys/values, as cross_patch_next_group() does.
void cross_patch_next_group_rows(StackImpl& stack, CrossPatchCache& cache, const torch::Tensor& rows, int64_t n,
                                 int64_t r);
// x (R, m, D): entries at the group positions `rb` says (capacity n); has_prev (R) bool: the row's borrowed
// slots hold its previous group -> (R, m, D) (final norm applied).
torch::Tensor cross_patch_rows(StackImpl& stack, CrossPatchCache& cache, const torch::Tensor& x, const RowBatch& rb,
                               const torch::Tensor& has_prev, int64_t r);

}  // namespace bytelm
