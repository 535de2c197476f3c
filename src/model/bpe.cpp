// bpe.cpp — the subword-token Transformer (see bpe.h); the same Stack as the byte Transformer.
#include "model/bpe.h"

#include "util/error.h"

namespace bytelm {

BpeModelImpl::BpeModelImpl(const ModelConfig& cfg) : LanguageModelImpl(cfg) {
  embed = register_module("embed", torch::nn::Embedding(cfg.vocab_size + 1, cfg.global.width));
  model = register_module("model", Stack(cfg.global, cfg.norm_eps));
  head = register_module("head",
                         torch::nn::Linear(torch::nn::LinearOptions(cfg.global.width, cfg.vocab_size).bias(false)));
  init_weights(*this, cfg.init_std, cfg.global.layers);
}

torch::Tensor BpeModelImpl::forward(const torch::Tensor& ids) {
  const int64_t B = ids.size(0), T = ids.size(1);
  auto start = torch::full({B, 1}, start_id(), ids.options());
  auto in = torch::cat({start, ids.narrow(1, 0, T - 1)}, 1);  // (B, T)
  return head(model(embed(in)));                              // (B, T, V)
}

torch::Tensor BpeModelImpl::start(int64_t batch) {
  caches_ = model->make_caches(batch, cfg_.context, std::move(caches_));
  decoded_ = 0;
  auto ids = torch::full({batch, 1}, start_id(),
                         torch::TensorOptions().dtype(torch::kLong).device(head->weight.device()));
  return head(model(embed(ids), 0, &caches_)).select(1, 0);  // (B, V)
}

torch::Tensor BpeModelImpl::feed(const torch::Tensor& ids) {
  const int64_t n = ids.size(1);
  if (decoded_ + n > cfg_.context - 1)
    throw Error("decoding past the context of " + std::to_string(cfg_.context) + " tokens");
  auto out = head(model(embed(ids), decoded_ + 1, &caches_));  // token i sits at position decoded_ + 1 + i
  decoded_ += n;
  return out;  // (B, n, V)
}

double BpeModelImpl::forward_flops_per_token() const {
  return stack_matmul_flops(cfg_.global) + 2.0 * cfg_.global.width * cfg_.vocab_size +
         stack_attention_flops(cfg_.global, double(cfg_.context));
}

std::vector<FlopsPart> BpeModelImpl::flops() const {
  FlopsPart p;
  p.name = "model";
  p.params = num_params();
  p.matmul_params = p.params - embed->weight.numel();
  for (auto& prm : model->named_parameters())
    if (prm.value().dim() < 2) p.matmul_params -= prm.value().numel();
  p.matmul_flops = (stack_matmul_flops(cfg_.global) + 2.0 * cfg_.global.width * cfg_.vocab_size) / bytes_per_token_;
  p.attention_flops = stack_attention_flops(cfg_.global, double(cfg_.context)) / bytes_per_token_;
  return {p};
}

}  // namespace bytelm
