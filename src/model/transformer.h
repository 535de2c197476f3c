// transformer.h — the byte-level decoder-only Transformer every paper compares against.
// Input ids: a start id (256) then bytes 0..T-2; outputs predict bytes 0..T-1 over 256 values.
// The tokenized baseline (bpe.h) is this model over another vocabulary: V ids, start id V.
#pragma once
#include "model/blocks.h"
#include "model/model.h"

namespace bytelm {

// Row decoding of a model that reads one id per position after a start id (Transformer, BPE, the entropy
// model): the inputs of one rows_feed() call, (R, n) ids on the device (the start id where a row restarts,
// then its ids + id_offset; padding 0), the cache rows and positions (blocks.h), and for each row the flat
// index r * n + i of its last entry, whose output predicts the row's next id (ids checked by check_row_feeds).
struct TokenRowInputs {
  torch::Tensor ids;  // (R, n) int64
  RowBatch batch;
  torch::Tensor last;  // (R) int64
};
TokenRowInputs token_row_inputs(const LanguageModelImpl& model, const std::vector<RowFeed>& feeds, int64_t start_id,
                                int64_t id_offset, const torch::Device& device);
// rows_keep() for such a model: row `to` keeps min(ids, what row `from` has fed) ids of row `from` (the start
// entry and those ids copied in every layer when from != to); decoded: the model's ids fed per row.
int64_t keep_token_row(std::vector<int64_t>& decoded, std::vector<KVCache>& caches, int64_t from, int64_t to,
                       int64_t ids);

class TransformerImpl : public LanguageModelImpl {
 public:
  explicit TransformerImpl(const ModelConfig& cfg) : TransformerImpl(cfg, kByteVocab, "bytes") {}
  torch::Tensor forward(const torch::Tensor& ids) override;  // (B, T) -> (B, T, V)
  torch::Tensor start(int64_t batch) override;               // -> (B, V) after the start id
  torch::Tensor feed(const torch::Tensor& ids) override;     // (B, n) -> (B, n, V)
  bool can_rewind() const override { return true; }
  void rewind(int64_t ids) override;  // moves the cache lengths back
  std::vector<FlopsPart> flops() const override;
  bool has_static_step(int64_t) const override { return true; }
  int64_t static_prepare(const torch::Tensor& bytes) override;  // key = attention span
  void static_compute(int64_t key) override;
  // Row decoding: one KV cache row per slot; each row's entries at its own positions (blocks_rows.cpp).
  bool has_row_decoding() const override { return true; }
  void rows_begin(int64_t slots) override;
  torch::Tensor rows_feed(const std::vector<RowFeed>& feeds, bool every_id = false) override;  // -> (R, V)
  int64_t rows_keep(int64_t from, int64_t to, int64_t ids) override;

  static constexpr int64_t kStartId = 256;
  torch::nn::Embedding embed{nullptr};  // (V + 1, D): V ids (256 bytes) + start id
  Stack model{nullptr};
  torch::nn::Linear head{nullptr};  // D -> V

 protected:
  // vocab V: ids [0, V) and start id V; unit: what an id is, for messages ("bytes", "tokens").
  TransformerImpl(const ModelConfig& cfg, int64_t vocab, const char* unit);
  // Per position: matmuls (stack + head) and attention FLOPs of one forward pass.
  double matmul_flops_per_position() const;
  double attention_flops_per_position() const;
  int64_t matmul_params() const;
  int64_t vocab_;
  const char* unit_;

 private:
  std::vector<KVCache> caches_;
  torch::Tensor in_ids_, pos_;  // static step inputs: (B, 1) ids, 0-dim position
};

}  // namespace bytelm
