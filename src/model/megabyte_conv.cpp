// megabyte_conv.cpp — MEGABYTE's causal convolutional patch encoder (see megabyte_conv.h).
#include "model/megabyte_conv.h"

namespace bytelm {

CausalConvEncoderImpl::CausalConvEncoderImpl(int64_t width, const std::vector<int64_t>& kernels_) : kernels(kernels_) {
  convs = register_module("convs", torch::nn::ModuleList());
  for (int64_t k : kernels) convs->push_back(torch::nn::Conv1d(torch::nn::Conv1dOptions(width, width, k).bias(false)));
}

torch::Tensor CausalConvEncoderImpl::forward(const torch::Tensor& h_in) {
  auto h = h_in.transpose(1, 2);  // (B, D_G, T): Conv1d's layout
  for (size_t i = 0; i < convs->size(); ++i) {
    const int64_t k = kernels[i];
    auto padded = torch::constant_pad_nd(h, {k - 1, 0}, 0);  // (B, D_G, T + k - 1): left only, so causal
    h = h + torch::silu(convs[i]->as<torch::nn::Conv1dImpl>()->forward(padded));
  }
  return h.transpose(1, 2);  // (B, T, D_G)
}

int64_t CausalConvEncoderImpl::receptive_field() const {
  int64_t r = 0;
  for (int64_t k : kernels) r += k - 1;
  return r;
}

double CausalConvEncoderImpl::flops_per_byte() const {
  double n = 0;
  for (const auto& p : parameters()) n += double(p.numel());
  return 2.0 * n;
}

}  // namespace bytelm
