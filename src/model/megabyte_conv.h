// megabyte_conv.h — MEGABYTE's convolutional patch encoder (paper section 2.3, "Convolutional Patch
// Encoder"; Table 10): a stack of causal 1-D convolutions over the global byte embeddings before they are
// cut into patches, so a patch's vector also sees the bytes just before it. Each layer is residual:
// h = h + silu(conv_k(h)), the convolution left-padded by k - 1 so position t reads only positions <= t.
// The paper gives the kernel sizes (3, 5, 7) but not the rest of the layer; the residual SiLU form is ours.
// Shapes: B batch, T bytes, D_G global width per byte.
#pragma once
#include "model/blocks.h"

namespace bytelm {

struct CausalConvEncoderImpl : torch::nn::Module {
  CausalConvEncoderImpl(int64_t width, const std::vector<int64_t>& kernels);
  torch::Tensor forward(const torch::Tensor& h);  // (B, T, D_G) -> (B, T, D_G)
  // Bytes before t that output t depends on: sum of (k - 1). Decoding recomputes a window this much longer.
  int64_t receptive_field() const;
  // Matmul FLOPs per byte (2 x weights) and the weights.
  double flops_per_byte() const;
  torch::nn::ModuleList convs;  // Conv1d(D_G, D_G, k), no bias
  std::vector<int64_t> kernels;
};
TORCH_MODULE(CausalConvEncoder);

}  // namespace bytelm
