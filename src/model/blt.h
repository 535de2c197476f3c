// blt.h — BLT, the Byte Latent Transformer (Pagnoni et al. 2024), in the module
// layout of Hugging Face's BltForCausalLM so that named_parameters() are the checkpoint's tensor names
// (model.local_encoder.*, model.global_transformer.*, model.local_decoder.*, model.patcher.*, lm_head).
// Ids: BOS=1, byte b -> b + 4, vocab 260 (src/blt/hash.h). Shapes: B batch, N ids (BOS + bytes),
// K patches, k = cross_attn_k vectors per patch, D_e/D_g/D_d encoder/global/decoder widths.
// Where HF's implementation differs from the paper we follow HF (it is what released weights expect):
// rotary pairs interleaved (2i, 2i+1); rope theta per part; cross-attention adds its query twice
// (x + (attn(x) + x)); no final norm in encoder or global model; patch queries are max-pooled.
#pragma once
#include <functional>

#include "blt/patcher.h"
#include "model/blocks.h"
#include "model/entropy_model.h"
#include "model/model.h"

namespace bytelm {

struct LocalEncoderImpl : StackImpl {  // blocks without a final norm
  LocalEncoderImpl(const ModelConfig& cfg);
  torch::nn::Embedding embed_tokens{nullptr};             // (260, D_e)
  torch::nn::ModuleList cross_attn_layers;                // CrossAttention, 1 or one per layer
  torch::nn::Linear patch_embedding_projection{nullptr};  // D_e -> k*D_e
};
TORCH_MODULE(LocalEncoder);

struct GlobalTransformerImpl : StackImpl {  // blocks without a final norm
  GlobalTransformerImpl(const ModelConfig& cfg);
  torch::nn::Linear token_embedding_projection{nullptr};  // k*D_e -> D_g when they differ
};
TORCH_MODULE(GlobalTransformer);

struct LocalDecoderImpl : StackImpl {  // blocks + final norm
  LocalDecoderImpl(const ModelConfig& cfg);
  torch::nn::ModuleList cross_attn_layers;
  torch::nn::Linear patch_embedding_projection{nullptr};  // D_g -> k*D_d
};
TORCH_MODULE(LocalDecoder);

struct BltInnerImpl : torch::nn::Module {  // HF BltModel
  explicit BltInnerImpl(const ModelConfig& cfg);
  torch::nn::Embedding encoder_hash_tok_embedding{nullptr};  // (functions * sizes * V, D_e)
  LocalEncoder local_encoder{nullptr};
  GlobalTransformer global_transformer{nullptr};
  LocalDecoder local_decoder{nullptr};
  Patcher patcher{nullptr};  // absent when the config has no patcher
};
TORCH_MODULE(BltInner);

class BltImpl : public LanguageModelImpl {
 public:
  explicit BltImpl(const ModelConfig& cfg);
  // bytes (B, T) -> logits (B, T, 260): ids are BOS + bytes, patched by the configured rule.
  torch::Tensor forward(const torch::Tensor& bytes) override;
  // Cached decoding: the entropy model advances one byte at a time with its KV cache and decides
  // boundaries online; when a patch closes the encoder pools it and the global model takes one step with
  // its cache; the decoder runs once per byte with its cache. Rows of a batch advance together byte by
  // byte; each has its own patches, so each has its own global-model cache and steps it on its own.
  torch::Tensor start(int64_t batch) override;
  torch::Tensor feed(const torch::Tensor& bytes) override;
  int64_t vocab_offset() const override { return 4; }
  std::vector<FlopsPart> flops() const override;
  // Cuts the ids, entropies and caches back; a row whose last closed patch is no longer closed drops its
  // global entries and steps its global model again for the last patch still closed.
  bool can_rewind() const override { return true; }
  void rewind(int64_t bytes) override;
  // Static steps (batch 1 only): key kind 1 = the entropy model's step (its entropy is then read on the host);
  // kind 2 = encoder (+ pooling, cross-attention and a global step if the byte closes a patch) + decoder.
  bool has_static_step(int64_t batch) const override { return batch == 1; }
  int64_t static_prepare(const torch::Tensor& bytes) override;
  void static_compute(int64_t key) override;
  int64_t static_next() override;
  // Row decoding (blt_rows.cpp): every row at its own position. One call runs the entropy model, the encoder
  // and the decoder once over every row's ids (a prompt chunk in parallel), decides the patch boundaries on
  // the host as cached decoding does, and steps the global model once over all the patches the call closes
  // (each row at its own patch index).
  bool has_row_decoding() const override { return true; }
  void rows_begin(int64_t slots) override;
  torch::Tensor rows_feed(const std::vector<RowFeed>& feeds, bool every_id = false) override;  // -> (R, 260)
  int64_t rows_keep(int64_t from, int64_t to, int64_t bytes) override;

  // Hooks (model.h): patches cut from the data; FLOPs at the measured mean patch size.
  double activation_floats_per_byte() const override;
  bool dynamic_patches() const override { return true; }
  double counted_patch_size() const override { return mean_patch_size_; }
  double count_patches_of(const torch::Tensor& bytes) override;
  double take_training_patches() override;
  std::string patching_warning() const override;
  void set_counted_patch_size(double bytes) override { set_mean_patch_size(bytes); }
  bool runs_entropy_model() const override { return cfg_.patching.mode == "entropy"; }
  void attach_entropy_model(const LanguageModelImpl& entropy) override;
  double calibrate_patching(const torch::Tensor& bytes, double bytes_per_patch) override {
    return calibrate_threshold(bytes, bytes_per_patch);
  }
  std::shared_ptr<LanguageModelImpl> entropy_patcher() override;

  // Patch lengths of one sequence of ids (NextByte alignment: they cover the N ids and the next one).
  std::vector<int64_t> patch_lengths(const std::vector<int64_t>& ids, const std::vector<float>& entropies) const;
  // Patch lengths of every sequence of ids (B, N).
  std::vector<std::vector<int64_t>> batch_patch_lengths(const torch::Tensor& ids);
  // Entropies of the entropy model over ids (B, N) -> (B, N); empty if the mode needs none.
  torch::Tensor entropies(const torch::Tensor& ids);
  // Replaces the patching rule (e.g. a calibrated threshold); the weights stay.
  void set_patching(const PatchingConfig& patching);
  // FLOPs accounting uses this mean patch size (bytes per patch); set it from a measurement.
  void set_mean_patch_size(double bytes) { mean_patch_size_ = bytes; }
  double mean_patch_size() const { return mean_patch_size_; }
  // An evaluation ablation of the latent global transformer in the full forward pass (not in cached
  // decoding, not in training): kSkip hands the global model's inputs (the pooled patch queries) straight
  // to the decoder, so patches still carry the encoder's summary but no patch sees another; kZero hands it
  // zeros, so the decoder learns nothing from patches and only the local encoder-decoder path predicts.
  enum class GlobalAblation { kNone, kSkip, kZero };
  void set_global_ablation(GlobalAblation a) { global_ablation_ = a; }
  // Mean bytes per patch over the sequences in `bytes` (B, T).
  double measure_patch_size(const torch::Tensor& bytes);
  // The mean bytes per patch of the sequences the forward passes saw in training mode since the last call
  // (NaN if none), as measure_patch_size averages them: training's FLOPs follow the patches it really made.
  double take_training_patch_size();
  // Entropy patching: sets the threshold (bisection) so the mean patch size over `bytes` (B, T) is close
  // to `bytes_per_patch`; the entropies are computed once. Returns the threshold. Throws Error if the
  // mode is not entropy patching or the size cannot be reached.
  double calibrate_threshold(const torch::Tensor& bytes, double bytes_per_patch);

  BltInner model{nullptr};
  torch::nn::Linear lm_head{nullptr};  // D_d -> 260

 private:
  torch::Tensor hash_embeddings(const torch::Tensor& ids);  // (B, N) -> (B, N, D_e)
  // Patches -> global-model inputs (B, K, D_g): pooled (B, K, D_e) max-pooled byte states, projected to k
  // queries per patch, which attend to the states (B, N, D_e) at index[:, j, :] where valid[:, j, :]
  // (index, valid: (B, K, L); valid undefined = all).
  torch::Tensor patch_inputs(const torch::Tensor& pooled, const torch::Tensor& states, const torch::Tensor& index,
                             const torch::Tensor& valid);
  // Global states (B, K, D_g) -> the decoder's keys/values, k per patch: (B, K*k, D_d).
  torch::Tensor decoder_kv(const torch::Tensor& g);
  // Decoder over byte states h (B, N, D): byte t cross-attends to kv[index[t, :]] (its patch's k vectors).
  torch::Tensor decode(torch::Tensor h, const torch::Tensor& kv, const torch::Tensor& index, int64_t pos0,
                       std::vector<KVCache>* caches);
  // The same with each decoder block applied by `block(block, h, layer)` (full pass, cached or static step).
  torch::Tensor decode_with(torch::Tensor h, const torch::Tensor& kv, const torch::Tensor& index,
                            const std::function<torch::Tensor(BlockImpl&, const torch::Tensor&, size_t)>& block);
  torch::Tensor step(const std::vector<int64_t>& ids);  // cached step for one id per row -> logits (B, 260)
  // Static-step keys: the entropy model at span s; the rest at encoder span s, closing a patch or not.
  static int64_t patcher_key(int64_t span) { return (int64_t(1) << 40) | span; }
  // global_span > 0: this id closes a patch and the global model steps over that span.
  static int64_t rest_key(int64_t span, int64_t global_span) { return (int64_t(2) << 40) | (global_span << 20) | span; }
  // Host side of id t of row b: its hash rows for the encoder input; whether it closes its patch (if so,
  // the row moves on to the next patch).
  std::vector<int64_t> hash_rows(int64_t b, int64_t t) const;
  bool closes_patch(int64_t b);
  // Row b's patch of ids [first, last] closes: pools it, steps the row's global model at position
  // rows_[b].closed - 1 and writes the decoder's keys/values of its output into patch_kv_[b].
  void close_patch(int64_t b, int64_t first, int64_t last);
  // Decoding state for `batch` rows (start(), rows_begin()); per_row_global: each row gets a batch-1 global cache.
  void allocate(int64_t batch, bool per_row_global);
  // Row decoding: the global model over the patches [first, last] (id positions) each of rows `slots` closed,
  // at its patch indices; writes the global caches and each row's patch_kv_ -> decoder keys/values
  // (G, M*k, D_d) of every patch, M = the most patches of a row (a row's missing ones repeat its last).
  torch::Tensor rows_global(const std::vector<int64_t>& slots,
                            const std::vector<std::vector<std::pair<int64_t, int64_t>>>& patches);

  blt::Patcher rule_;
  double mean_patch_size_;
  double tally_sum_ = 0;    // training forward passes: sum over sequences of their mean bytes per patch
  int64_t tally_rows_ = 0;  // ... and the number of sequences
  // decoding state
  struct Row {
    std::vector<int64_t> ids;                       // ids read so far (BOS first)
    std::vector<float> ent;                         // their entropies (entropy patching)
    int64_t open_start = 0;                         // position of the first id of the patch being read
    int64_t closed = 0;                             // patches closed so far = the global model's next position
    std::vector<int64_t> closed_after, open_after;  // closed and open_start after each id (for rewind)
    std::vector<KVCache> global_caches;             // batch 1: rows step the global model at different times
    void reset() {                                  // nothing read yet (the global caches stay allocated)
      ids.clear();
      ent.clear();
      closed_after.clear();
      open_after.clear();
      open_start = closed = 0;
    }
  };
  std::vector<KVCache> row_global_caches_;  // row decoding: one global cache of `slots` rows
  std::vector<Row> rows_;
  std::vector<KVCache> patcher_caches_, encoder_caches_, decoder_caches_;  // batch B
  torch::Tensor states_;    // (B, capacity, D_e): encoder state of every id so far (pooled when a patch closes)
  torch::Tensor patch_kv_;  // (B, k, D_d): decoder keys/values of each row's global state (kept in place)
  // Static step inputs: id (1, 1), its position t, the open patch's start, the global position (0-dim),
  // hash rows (1, 1, R), 0..k-1 (1, 1, k), 0..capacity-1; and the entropy output (1).
  torch::Tensor in_id_, t_, start_, gpos_, in_rows_, k_index_, positions_, entropy_out_;
  int static_phase_ = 0;  // 1: after static_prepare, 2: the rest of the step handed out
  GlobalAblation global_ablation_ = GlobalAblation::kNone;
};

// The patching rule of a config (blt_patching.cpp).
blt::PatcherOptions patcher_options(const PatchingConfig& patching);

// A BLT's patcher as an entropy model of its own (same weights and device, eval mode); Error if it has none.
std::shared_ptr<EntropyModelImpl> standalone_patcher(const BltImpl& blt);

// Copies an entropy-model checkpoint into a BLT model's patcher; Error if it does not fit.
void load_patcher(BltImpl& blt, const LanguageModelImpl& entropy_model);

}  // namespace bytelm
