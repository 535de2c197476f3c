// entropy_model.cpp — the entropy model and per-byte entropies (see entropy_model.h).
#include "model/entropy_model.h"

#include "blt/hash.h"
#include "model/module_util.h"
#include "model/transformer.h"
#include "util/error.h"

namespace bytelm {

PatcherImpl::PatcherImpl(const StackConfig& cfg) : StackImpl(cfg, cfg.norm_eps, /*final_norm=*/true) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(blt::kVocab, cfg.width));
  lm_head = register_module("lm_head", linear(cfg.width, blt::kVocab));
}

torch::Tensor PatcherImpl::logits(const torch::Tensor& ids, int64_t pos0, std::vector<KVCache>* caches) {
  return lm_head(forward(embed_tokens(ids), pos0, caches));
}

torch::Tensor entropy_of(const torch::Tensor& logits) {
  auto logp = torch::log_softmax(logits.to(torch::kFloat32), -1);
  return -(logp.exp() * logp).sum(-1);
}

EntropyModelImpl::EntropyModelImpl(const ModelConfig& cfg) : LanguageModelImpl(cfg) {
  patcher = register_module("patcher", Patcher(cfg.global));
  init_weights(*patcher, cfg.init_std, cfg.global.layers);
}

torch::Tensor EntropyModelImpl::forward(const torch::Tensor& bytes) {
  const int64_t B = bytes.size(0), T = bytes.size(1);
  auto ids =
      torch::cat({torch::full({B, 1}, blt::kBos, bytes.options()), bytes.narrow(1, 0, T - 1) + blt::kByteOffset}, 1);
  return patcher->logits(ids);  // (B, T, 260)
}

torch::Tensor EntropyModelImpl::start(int64_t batch) {
  caches_ = patcher->make_caches(batch, cfg_.context);
  decoded_ = 0;
  auto bos = torch::full({batch, 1}, blt::kBos,
                         torch::TensorOptions().dtype(torch::kLong).device(patcher->lm_head->weight.device()));
  return patcher->logits(bos, 0, &caches_).select(1, 0);
}

torch::Tensor EntropyModelImpl::feed(const torch::Tensor& bytes) {
  const int64_t n = bytes.size(1);
  if (decoded_ + n > cfg_.context - 1)
    throw Error("decoding past the context of " + std::to_string(cfg_.context) + " bytes");
  auto out = patcher->logits(bytes + blt::kByteOffset, decoded_ + 1, &caches_);
  decoded_ += n;
  return out;
}

void EntropyModelImpl::rows_begin(int64_t slots) {
  caches_ = patcher->make_caches(slots, cfg_.context, std::move(caches_));
  row_decoded_.assign(size_t(slots), kRowNotStarted);
  decoded_ = 0;
}

torch::Tensor EntropyModelImpl::rows_feed(const std::vector<RowFeed>& feeds, bool every_id) {
  const auto after = check_row_feeds(feeds, cfg_.context - 1, "bytes", kByteVocab);
  const int64_t R = int64_t(feeds.size());
  const auto in = token_row_inputs(*this, feeds, blt::kBos, blt::kByteOffset, patcher->lm_head->weight.device());
  auto h = patcher->rows(patcher->embed_tokens(in.ids), in.batch, caches_);                              // (R, n, D)
  auto out = every_id ? patcher->lm_head(h)                                                              // (R, n, 260)
                      : patcher->lm_head(h.reshape({R * in.ids.size(1), -1}).index_select(0, in.last));  // (R, 260)
  for (int64_t r = 0; r < R; ++r) row_decoded_[size_t(feeds[r].slot)] = after[size_t(r)];
  return out;
}

int64_t EntropyModelImpl::rows_keep(int64_t from, int64_t to, int64_t bytes) {
  return keep_token_row(row_decoded_, caches_, from, to, bytes);
}

void EntropyModelImpl::rewind(int64_t bytes) {
  check_rewind(bytes);
  decoded_ -= bytes;
  for (auto& c : caches_) c.len = decoded_ + 1;  // BOS, then the bytes kept
}

std::vector<FlopsPart> EntropyModelImpl::flops() const {
  FlopsPart p;
  p.name = "entropy";
  p.params = num_params();
  p.matmul_params = count_params(*patcher, true);
  p.matmul_flops = stack_matmul_flops(cfg_.global) + 2.0 * cfg_.global.width * blt::kVocab;
  p.attention_flops = stack_attention_flops(cfg_.global, double(cfg_.context));
  return {p};
}

std::vector<float> byte_entropies(LanguageModelImpl& model, const std::string& bytes, const std::string& device) {
  torch::NoGradGuard no_grad;
  const int64_t window = model.config().context;  // bytes per forward pass
  std::vector<float> out;
  out.reserve(bytes.size());
  for (size_t start = 0; start < bytes.size(); start += size_t(window)) {
    const int64_t n = std::min<int64_t>(window, int64_t(bytes.size() - start));
    auto x = torch::from_blob(const_cast<char*>(bytes.data() + start), {1, n}, torch::kUInt8).to(device, torch::kLong);
    auto h = entropy_of(model.forward(x)).to(torch::kCPU).contiguous();  // (1, n)
    out.insert(out.end(), h.data_ptr<float>(), h.data_ptr<float>() + n);
  }
  return out;
}

}  // namespace bytelm
