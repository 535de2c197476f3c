// bpe.h — the tokenized baseline: the byte Transformer's blocks over subword tokens (SentencePiece BPE or
// unigram, src/tokenizer). Here the LanguageModel interface's "bytes" are token ids in [0, V): forward and
// feed take ids and give logits over the V pieces; the tokenizer (tokenizer.model beside the weights) turns
// bytes into ids and back. Input ids: a start id (V) then tokens 0..T-2; outputs predict tokens 0..T-1.
// Letters: T here is tokens (the context), V the tokenizer's pieces.
#pragma once
#include "model/transformer.h"

namespace bytelm {

// Bytes per token assumed for FLOPs per byte until one is measured on data (train measures the training
// split, eval the evaluated files): about what a 4,096-piece BPE gives on English prose.
constexpr double kNominalBytesPerToken = 4.0;

class BpeModelImpl : public TransformerImpl {  // the byte Transformer's code over V pieces
 public:
  explicit BpeModelImpl(const ModelConfig& cfg) : TransformerImpl(cfg, cfg.vocab_size, "tokens") {}
  // Per byte: the per-token FLOPs over bytes_per_position() (bytes per token).
  std::vector<FlopsPart> flops() const override;
  bool has_static_step(int64_t) const override { return false; }  // token decoding uses the KV caches

  // Hooks (model.h): a batch holds token ids; FLOPs per byte at the measured bytes per token.
  bool reads_tokens() const override { return true; }
  double bytes_per_position() const override { return bytes_per_token_; }
  void set_bytes_per_position(double b) override { bytes_per_token_ = b; }
  double forward_flops_per_position() const override;  // per token

  int64_t start_id() const { return vocab_; }

 private:
  double bytes_per_token_ = kNominalBytesPerToken;
};

}  // namespace bytelm
