// transformer.h — the byte-level decoder-only Transformer every paper compares against.
// Input ids: a start id (256) then bytes 0..T-2; outputs predict bytes 0..T-1 over 256 values.
#pragma once
#include "model/blocks.h"
#include "model/model.h"

namespace bytelm {

class TransformerImpl : public LanguageModelImpl {
 public:
  explicit TransformerImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& bytes) override;  // (B, T) -> (B, T, 256)
  torch::Tensor start(int64_t batch) override;
  torch::Tensor feed(const torch::Tensor& bytes) override;
  std::vector<FlopsPart> flops() const override;

  static constexpr int64_t kStartId = 256;
  torch::nn::Embedding embed{nullptr};  // (257, D): 256 bytes + start id
  Stack model{nullptr};
  torch::nn::Linear head{nullptr};      // D -> 256

 private:
  std::vector<KVCache> caches_;
};

}  // namespace bytelm
