// hnet.h — H-Net (Hwang, Wang, Gu, 2025): byte chunks learned end to end by dynamic chunking.
// Each stage s: x̂ = E^s(x); a routing module scores p_t = (1 - cos(W_q x̂_{t-1}, W_k x̂_t)) / 2 and keeps
// the bytes with p_t > 0.5 (chunk starts); the kept vectors (padded to the next width) go to the inner network
// (the next stage, or the main network); its outputs are smoothed by an EMA over chunks (weight P = p of the
// chunk's start), brought back to every byte, scaled by the confidence's straight-through estimator, added
// to a residual projection of x̂, and decoded by D^s. The ratio loss pulls each stage towards one chunk per
// N_s positions. Positions of the inner networks are chunk indices.
// Deviation from the paper: encoders and decoders are bytelm's attention blocks (rotary, full causal), not
// Mamba-2 layers; see docs/models.md.
// Letters: B batch, T bytes, L positions of a stage, K chunks (the most of any row), D_s stage width.
#pragma once
#include <memory>
#include <vector>

#include "model/blocks.h"
#include "model/model.h"

namespace bytelm {

// One stage's modules. Parameter names: stages.<s>.encoder, .decoder, .q_proj, .k_proj, .residual_proj, .pad.
struct HnetStageImpl : torch::nn::Module {
  // inner_width: D_{s+1} (the next stage's or the main network's width).
  HnetStageImpl(const HnetStageConfig& cfg, int64_t inner_width, double eps);
  Stack encoder{nullptr}, decoder{nullptr};
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr};  // routing, D_s x D_s, no bias, identity at init
  torch::nn::Linear residual_proj{nullptr};            // D_s x D_s with bias, zero weight at init
  torch::Tensor pad;                                   // (D_{s+1} - D_s) learned, zero at init; undefined if none
  int64_t width, inner_width;
  double target_ratio;
};
TORCH_MODULE(HnetStage);

// Routing of one stage's positions. p (B, L) fp32 boundary probabilities (1 at the first position),
// boundary (B, L) bool: p > 0.5 (and a valid position).
struct Routing {
  torch::Tensor p, boundary;
};

class HnetImpl : public LanguageModelImpl {
 public:
  explicit HnetImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& bytes) override;  // (B, T) -> (B, T, 256)
  torch::Tensor start(int64_t batch) override;                 // -> (B, 256) for byte 0
  torch::Tensor feed(const torch::Tensor& bytes) override;     // (B, n) -> (B, n, 256)
  std::vector<FlopsPart> flops() const override;
  // Row decoding (hnet_decode.cpp): the outer stage's caches hold one row per slot at its own position; the
  // network inside steps per row, as in cached decoding. No prefix reuse (rows_keep keeps nothing).
  bool has_row_decoding() const override { return true; }
  void rows_begin(int64_t slots) override;
  torch::Tensor rows_feed(const std::vector<RowFeed>& feeds, bool every_id = false) override;  // -> (R, 256)

  double activation_floats_per_byte() const override;
  bool dynamic_patches() const override { return true; }
  double counted_patch_size() const override;
  double count_patches_of(const torch::Tensor& bytes) override;
  double take_training_patches() override;
  void set_counted_patch_size(double bytes) override;
  bool learns_patches() const override { return true; }
  torch::Tensor auxiliary_loss() override;
  std::string patching_warning() const override;
  std::string describe_patches() const override;
  double lr_multiplier(const std::string& parameter) const override;
  std::vector<std::vector<int64_t>> chunk_starts(const torch::Tensor& bytes) override;

  // Routing of stage s over its encoder outputs x̂ (B, L, D_s); valid (B, L) bool or undefined (all valid).
  Routing route(int64_t s, const torch::Tensor& encoded, const torch::Tensor& valid);
  // The ratio loss of one stage (paper eq. 10) from F = mean of the boundaries (no gradient) and G = mean of p.
  static torch::Tensor ratio_loss(const torch::Tensor& boundary_mean, const torch::Tensor& p_mean, double target);
  // The confidence's straight-through estimator: c = p at a chunk start, 1 - p elsewhere; c + stopgrad(1 - c)
  // is 1 going forward and passes c's gradient back. p, boundary (B, L) -> (B, L).
  static torch::Tensor straight_through(const torch::Tensor& p, const torch::Tensor& boundary);
  // Chunk EMA: z̄_c = P_c ẑ_c + (1 - P_c) z̄_{c-1}, z̄_{-1} = 0. chunks (B, K, D), P (B, K) -> (B, K, D).
  static torch::Tensor smooth(const torch::Tensor& chunks, const torch::Tensor& P);
  // Bytes per chunk each stage realised (positions of the stage per chunk), as counted for FLOPs.
  const std::vector<double>& stage_ratios() const { return ratios_; }

  static constexpr int64_t kStartId = 256;
  torch::nn::Embedding embed{nullptr};  // (257, D_0): bytes + start id
  torch::nn::ModuleList stages{nullptr};
  Stack main{nullptr};              // the main network (global attention over chunks)
  torch::nn::Linear head{nullptr};  // D_0 -> 256

  struct DecodeState;  // hnet_decode.cpp

 private:
  HnetStageImpl& stage(int64_t s) { return *stages[size_t(s)]->as<HnetStageImpl>(); }
  // Stage s over x (B, L, D_s) whose rows have `lengths` (B) valid positions (undefined: all) -> (B, L, D_s).
  torch::Tensor run_stage(int64_t s, const torch::Tensor& x, const torch::Tensor& lengths);
  // The network inside stage s over its chunks (B, K, D_{s+1}) with `counts` (B) valid chunks per row.
  torch::Tensor run_inner(int64_t s, const torch::Tensor& chunks, const torch::Tensor& counts);
  torch::Tensor feed_stage(int64_t s, DecodeState& state, const torch::Tensor& x);
  torch::Tensor feed_inner(int64_t s, DecodeState& state, int64_t row, const torch::Tensor& chunks);
  std::unique_ptr<DecodeState> new_state(int64_t s, int64_t batch);
  void set_ratios(const std::vector<double>& ratios);

  // Positions and chunks each stage saw: in the last forward, and in training forwards since
  // take_training_patches().
  void count_chunks(int64_t s, const torch::Tensor& valid, const torch::Tensor& boundary);

  std::vector<double> ratios_;                 // realised positions per chunk of each stage (targets until measured)
  std::vector<double> seen_, kept_;            // training forwards since take_training_patches()
  std::vector<double> last_seen_, last_kept_;  // the last forward
  torch::Tensor aux_loss_;                     // α Σ ratio losses of the last training forward
  bool record_ = false;                        // chunk_starts(): keep row 0's chunk positions per stage
  std::vector<std::vector<int64_t>> recorded_;
  std::shared_ptr<DecodeState> decode_;
};

}  // namespace bytelm
