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
  bool has_static_step(int64_t) const override { return true; }
  int64_t static_prepare(const torch::Tensor& bytes) override;  // key = attention span
  void static_compute(int64_t key) override;

  static constexpr int64_t kStartId = 256;
  torch::nn::Embedding embed{nullptr};  // (257, D): 256 bytes + start id
  Stack model{nullptr};
  torch::nn::Linear head{nullptr};      // D -> 256

 private:
  std::vector<KVCache> caches_;
  torch::Tensor in_ids_, pos_;  // static step inputs: (B, 1) ids, 0-dim position
};

}  // namespace bytelm
