// megabyte.h — MEGABYTE (Yu et al. 2023), as in the paper's main text (section 2.2):
// patch embedder (global byte embedding + learned position, P bytes concatenated, a trainable pad
// patch in front, last patch dropped), a global transformer of width P*D_G over K = T/P patches, one
// shared projection D_G -> D_L for each of the P slices of a global output, plus the local embedding
// of the previous byte (a trainable pad at patch start), a local transformer of width D_L run over
// all patches in parallel, and a head over 256 bytes.
// Variants from the config (all off by default; see megabyte_conv.h, megabyte_xpatch.h, megabyte_levels.h):
// a causal conv encoder before patching, cross-patch attention in the local model, and middle levels
// between the global and the local model (an N-level hierarchy).
// Deviations (see docs/models.md): a final RMSNorm closes each of the two stacks (pre-norm); the local model
// uses rotary positions unless local.rope_theta is 0; the head is untied; no dropout.
#pragma once
#include "model/blocks.h"
#include "model/megabyte_conv.h"
#include "model/megabyte_levels.h"
#include "model/megabyte_xpatch.h"
#include "model/model.h"

namespace bytelm {

class MegabyteImpl : public LanguageModelImpl {
 public:
  explicit MegabyteImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& bytes) override;  // (B, T) -> (B, T, 256)
  torch::Tensor start(int64_t batch) override;
  torch::Tensor feed(const torch::Tensor& bytes) override;
  // Rewind within the current patch moves the local caches back; into an earlier patch it drops the global
  // entries of the patches no longer complete and re-steps the kept patch's global and local positions.
  // Not with cross-patch attention (its local caches carry the previous patch's keys).
  bool can_rewind() const override { return cfg_.cross_patch == 0; }
  void rewind(int64_t bytes) override;
  std::vector<FlopsPart> flops() const override;
  // Static steps: key 0 = a local step inside a patch; key s >= 1 = a global step (attention span s) at a
  // patch boundary, followed by the local step at the patch's first position.
  // Only the paper's main-text model has them (the variants decode with feed()).
  bool has_static_step(int64_t) const override { return !cfg_.megabyte_variant(); }
  int64_t static_prepare(const torch::Tensor& bytes) override;
  void static_compute(int64_t key) override;
  // Row decoding (megabyte_rows.cpp), the variants too: a row's bytes one local group at a time, the global
  // model and middle levels stepping for the rows whose bytes open their units. Prefix reuse: not with
  // cross-patch attention.
  bool has_row_decoding() const override { return true; }
  void rows_begin(int64_t slots) override;
  torch::Tensor rows_feed(const std::vector<RowFeed>& feeds, bool every_id = false) override;  // -> (R, 256)
  int64_t rows_keep(int64_t from, int64_t to, int64_t bytes) override;
  int64_t fixed_patch_size() const override { return cfg_.patch_size; }
  // Global model over T/P patches of width P*D_G, local model over every byte.
  double activation_floats_per_byte() const override;

  torch::nn::Embedding global_embed{nullptr};  // (256, D_G)
  torch::nn::Embedding global_pos{nullptr};    // (T, D_G)
  torch::Tensor global_pad;                    // (P * D_G)
  Stack global_model{nullptr};                 // width P * D_G over K patches
  torch::nn::Linear global_to_local{nullptr};  // D_G -> D_L, shared by the P slices
  torch::nn::Embedding local_embed{nullptr};   // (256, D_L)
  torch::Tensor local_pad;                     // (D_L)
  Stack local_model{nullptr};                  // width D_L over P positions
  torch::nn::Linear head{nullptr};             // D_L -> 256
  CausalConvEncoder conv{nullptr};             // conv_kernels: over the global byte embeddings (or null)
  std::vector<MegabyteLevel> levels;           // middle levels, top to bottom (registered as levels.<i>)
  // With middle levels global_to_local maps a slice of the last middle level's output (W / S) to D_L.

 private:
  // The local model over all groups: x (B, G, n, D_L) -> (B*G, n, D_L).
  torch::Tensor local_forward(const torch::Tensor& x);
  // Decoding: logits (B, 256) for byte `next`, the bytes before it being in history_; steps every level
  // whose unit starts at `next` (see megabyte_decode.cpp).
  torch::Tensor decode_position(int64_t next);
  // The global input vector of patch k from history_ (through the conv encoder if any) -> (B, P*D_G).
  torch::Tensor patch_embedding(int64_t k);
  // feed() of the two-level model: each patch's bytes through the local model in one call -> (B, n, 256).
  torch::Tensor feed_by_patch(const torch::Tensor& bytes);
  // Two-level model: the global step that starts patch k (its context into patch_ctx_, local caches
  // emptied); the local model over positions next .. next+len-1 of one patch -> logits (B, len, 256).
  void global_step(int64_t k);
  torch::Tensor local_run(int64_t next, int64_t len);
  // One local step at group position p from input (B, D_L) -> logits (B, 256).
  torch::Tensor local_step(const torch::Tensor& x, int64_t p);
  // Row decoding: a segment of each of rows `slots`, consecutive entries (kRowStart restarts the row, then
  // bytes) whose positions lie in one local group -> logits (R, 256) for each segment's last position
  // (every_id: (R, n, 256) after each entry).
  torch::Tensor rows_segment(const std::vector<int64_t>& slots, const std::vector<std::vector<int64_t>>& segments,
                             bool every_id);
  // The global step of rows `slots` whose next position is k * P: reads patch k - 1 (the pad for k = 0)
  // -> its output (G, P*D_G).
  torch::Tensor rows_global(const std::vector<int64_t>& slots, const std::vector<int64_t>& k);
  // Rows `slots` whose segments predict positions `first`: steps the global model and each middle level for
  // the rows whose position opens one of their units and writes the contexts below (patch_ctx_ last).
  void rows_units(const std::vector<int64_t>& slots, const std::vector<int64_t>& first);
  std::vector<uint8_t> row_has_prev_;  // row decoding, cross-patch attention: the row has a finished group

  std::vector<KVCache> global_caches_, local_caches_;
  std::vector<std::vector<KVCache>> level_caches_;  // middle levels
  CrossPatchCache cross_caches_;                    // the local model's, with cross-patch attention
  torch::Tensor history_;                           // (B, T) bytes fed so far
  torch::Tensor prev_patch_ctx_;  // (B, n, D_L): patch_ctx_ of patch prev_patch_ (-1: none), for rewind
  int64_t prev_patch_ = -1;
  torch::Tensor patch_ctx_;  // (B, n, D_L): projected output of the level above for the current group (kept in place)
  std::vector<torch::Tensor> level_ctx_;  // middle level i: (B, n_i, W_i), the same for its current group
  // Static step inputs: the byte (B), its patch position p and patch index k (0-dim), 0, and 0..P-1.
  torch::Tensor in_byte_, p_, k_, zero_, patch_offsets_;
};

}  // namespace bytelm
