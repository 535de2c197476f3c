// megabyte_levels.h — the pieces of an N-level MEGABYTE (a hierarchy such as 64 -> 8 -> 1 bytes): a middle
// level is a transformer over units of S bytes, run inside each unit of the level above (its "group" of
// n = S_above / S units), exactly as the paper's local model runs inside a global patch:
//   input[g, u] = from_above(slice u of the above level's output for group g) + embed(unit u - 1 of g)
// where a unit's embedding is the concatenation of its S byte embeddings (width W / S each) and unit 0 of
// every group gets a trainable pad instead. The local byte model is the last level (S = 1) and the paper's
// two-level model is the case with no middle level. Middle levels use rotary positions (default theta
// 10000) like the local model; only the global model has learned absolute positions.
// Shapes: B batch, T bytes, G groups, n units per group, W a level's width, W_up the level above's.
#pragma once
#include "model/blocks.h"

namespace bytelm {

struct MegabyteLevelImpl : torch::nn::Module {
  // upper_width: W_up; upper_units: how many units of this level one unit above holds (n).
  MegabyteLevelImpl(const LevelConfig& cfg, int64_t upper_width, int64_t upper_units, double eps);
  torch::nn::Linear from_above{nullptr};  // W_up / n -> W, shared by the n slices
  torch::nn::Embedding embed{nullptr};    // (256, W / S)
  torch::Tensor pad;                      // (W)
  Stack model{nullptr};                   // width W over n positions
  LevelConfig cfg;
};
TORCH_MODULE(MegabyteLevel);

// Inputs of a lower level for every group: upper (B, G, W_up) and the lower level's unit embeddings
// unit_emb (B, G, n, W) -> (B, G, n, W): proj(slice u of upper) + unit_emb[u - 1] (pad at u = 0).
torch::Tensor lower_level_inputs(torch::nn::Linear& proj, const torch::Tensor& upper, const torch::Tensor& unit_emb,
                                 const torch::Tensor& pad);

}  // namespace bytelm
