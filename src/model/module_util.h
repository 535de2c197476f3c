// module_util.h — small helpers shared by the model files: bias-free linear layers (every bytelm matmul)
// and parameter counts for the FLOPs accounting.
#pragma once
#include <torch/torch.h>

#include <string>

namespace bytelm {

inline torch::nn::Linear linear(int64_t in, int64_t out) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
}

// Parameters of `m`; matmul_only: only those used in matmuls (2-D and up, embedding tables excluded).
inline int64_t count_params(const torch::nn::Module& m, bool matmul_only) {
  int64_t n = 0;
  for (const auto& p : m.named_parameters()) {
    const bool embedding =
        p.key().find("embed_tokens") != std::string::npos || p.key().find("hash_tok") != std::string::npos;
    if (!matmul_only || (p.value().dim() >= 2 && !embedding)) n += p.value().numel();
  }
  return n;
}

}  // namespace bytelm
