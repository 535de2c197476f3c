// entropy_model.h — BLT's entropy model (Hugging Face's BltPatcher: embed_tokens, layers, norm, lm_head over
// the 260 BLT ids) as a part of BLT and as a byte language model of its own (`train --model entropy`),
// and the per-byte entropies that decide where BLT's patches start.
#pragma once
#include <string>
#include <vector>

#include "model/blocks.h"
#include "model/model.h"

namespace bytelm {

// The entropy model (HF BltPatcher): embed_tokens, layers, norm, lm_head over 260 ids.
struct PatcherImpl : StackImpl {
  explicit PatcherImpl(const StackConfig& cfg);
  // ids (B, N) at positions pos0.. -> logits (B, N, 260)
  torch::Tensor logits(const torch::Tensor& ids, int64_t pos0 = 0, std::vector<KVCache>* caches = nullptr);
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::Linear lm_head{nullptr};
};
TORCH_MODULE(Patcher);

// Entropy (nats) of softmax(logits) along the last dim, in fp32: (..., V) -> (...).
torch::Tensor entropy_of(const torch::Tensor& logits);

// `bytelm train --model entropy`: the patcher as a byte language model. Input ids are BOS then bytes.
class EntropyModelImpl : public LanguageModelImpl {
 public:
  explicit EntropyModelImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& bytes) override;  // (B, T) -> (B, T, 260)
  torch::Tensor start(int64_t batch) override;
  torch::Tensor feed(const torch::Tensor& bytes) override;
  bool can_rewind() const override { return true; }
  void rewind(int64_t bytes) override;  // moves the cache lengths back
  int64_t vocab_offset() const override { return 4; }
  // Row decoding, as the Transformer's (transformer.h: token_row_inputs): one cache row per slot.
  bool has_row_decoding() const override { return true; }
  void rows_begin(int64_t slots) override;
  torch::Tensor rows_feed(const std::vector<RowFeed>& feeds, bool every_id = false) override;  // -> (R, 260)
  int64_t rows_keep(int64_t from, int64_t to, int64_t bytes) override;
  std::vector<FlopsPart> flops() const override;
  bool is_entropy_model() const override { return true; }
  std::shared_ptr<LanguageModelImpl> entropy_patcher() override {
    return std::static_pointer_cast<LanguageModelImpl>(shared_from_this());
  }
  Patcher patcher{nullptr};

 private:
  std::vector<KVCache> caches_;
};

// Per-byte entropies (nats) of an entropy model over `bytes`: out[i] is the entropy of the distribution
// that predicts byte i (from BOS and the bytes before it). Long inputs are read in windows of the model's
// context, each starting with BOS.
std::vector<float> byte_entropies(LanguageModelImpl& entropy_model, const std::string& bytes,
                                  const std::string& device);

}  // namespace bytelm
