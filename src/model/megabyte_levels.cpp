// megabyte_levels.cpp — middle levels of an N-level MEGABYTE (see megabyte_levels.h).
#include "model/megabyte_levels.h"

namespace bytelm {

MegabyteLevelImpl::MegabyteLevelImpl(const LevelConfig& cfg_, int64_t upper_width, int64_t upper_units, double eps)
    : cfg(cfg_) {
  const int64_t W = cfg.stack.width;
  from_above = register_module("from_above",
                               torch::nn::Linear(torch::nn::LinearOptions(upper_width / upper_units, W).bias(false)));
  embed = register_module("embed", torch::nn::Embedding(256, W / cfg.patch_size));
  pad = register_parameter("pad", torch::zeros({W}));
  model = register_module("model", Stack(cfg.stack, eps));
}

torch::Tensor lower_level_inputs(torch::nn::Linear& proj, const torch::Tensor& upper, const torch::Tensor& unit_emb,
                                 const torch::Tensor& pad) {
  const int64_t B = unit_emb.size(0), G = unit_emb.size(1), n = unit_emb.size(2), W = unit_emb.size(3);
  auto above = proj(upper.view({B, G, n, upper.size(-1) / n}));  // (B, G, n, W)
  auto prev = torch::cat({pad.view({1, 1, 1, W}).expand({B, G, 1, W}), unit_emb.narrow(2, 0, n - 1)}, 2);
  return above + prev;
}

}  // namespace bytelm
