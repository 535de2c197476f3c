// bpe.cpp — the subword-token Transformer (see bpe.h): FLOPs per byte through the bytes each token covers.
#include "model/bpe.h"

namespace bytelm {

double BpeModelImpl::forward_flops_per_position() const {
  return matmul_flops_per_position() + attention_flops_per_position();
}

std::vector<FlopsPart> BpeModelImpl::flops() const {
  FlopsPart p;
  p.name = "model";
  p.params = num_params();
  p.matmul_params = matmul_params();
  p.matmul_flops = matmul_flops_per_position() / bytes_per_token_;
  p.attention_flops = attention_flops_per_position() / bytes_per_token_;
  return {p};
}

}  // namespace bytelm
