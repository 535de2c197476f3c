// model.h — the interface every bytelm model implements, and the factory.
// Training: forward(bytes) gives, at every position t, logits for byte t (each model predicts every byte
// of its input, the first from a learned start state). Decoding: start() then feed() with KV caches.
#pragma once
#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"

namespace bytelm {

constexpr int64_t kByteVocab = 256;

// FLOPs accounting for one part (e.g. "global", "local"), per byte, one forward pass.
struct FlopsPart {
  std::string name;
  int64_t params = 0;          // all parameters of the part, embeddings included
  int64_t matmul_params = 0;   // parameters used in matmuls (embedding lookups excluded)
  double matmul_flops = 0;     // 2 * matmul params applied per byte
  double attention_flops = 0;  // QK^T and AV per byte at full context
  bool counted = true;         // false: reported beside the model but not in its totals (BLT's entropy model)
};

// Row decoding (continuous batching): what one row takes in one rows_feed() call.
struct RowFeed {
  int64_t slot = 0;          // the row, 0 <= slot < slots
  bool restart = false;      // first begin the row afresh (as start() would for it alone)
  std::vector<int64_t> ids;  // then feed these bytes (token ids for token models)
};
constexpr int64_t kRowNotStarted = -1;  // row_decoded() of a row never started (or not kept)

class LanguageModelImpl : public torch::nn::Module {
 public:
  explicit LanguageModelImpl(ModelConfig cfg) : cfg_(std::move(cfg)) {}
  const ModelConfig& config() const { return cfg_; }

  // bytes: (B, T) int64 in [0, 256), T <= context -> logits (B, T, V); logits[:, t] predicts bytes[:, t].
  // V = 256 (byte values) or 260 (BLT ids: byte b is id b + vocab_offset(), ids below are special).
  virtual torch::Tensor forward(const torch::Tensor& bytes) = 0;
  virtual int64_t vocab_offset() const { return 0; }

  // Incremental decoding with KV caches (call under NoGradGuard).
  // start: resets the caches for `batch` sequences -> logits (B, 256) for byte 0.
  virtual torch::Tensor start(int64_t batch) = 0;
  // feed: appends bytes (B, n) -> logits (B, n, 256); row i predicts the byte after bytes[:, i].
  // At most context - 1 bytes in all (predictions for bytes 0 .. context-1, as in training).
  virtual torch::Tensor feed(const torch::Tensor& bytes) = 0;
  // Number of bytes fed since start().
  int64_t decoded() const { return decoded_; }
  // Speculative decoding: forgets the last `bytes` bytes fed (0 <= bytes <= decoded()), as if only the
  // bytes before them had been fed since start(); the next feed() continues from there. can_rewind() says
  // whether the model implements it; the default rewind() throws Error naming the model.
  virtual bool can_rewind() const { return false; }
  virtual void rewind(int64_t bytes);

  // Static-shape decoding, one byte per row per step, for CUDA graphs (Transformer, MEGABYTE). It shares
  // the caches of start()/feed(): prefill with feed(), then continue with static steps.
  //   static_prepare(bytes (B) int64 on the device): appends the bytes like feed() would, but only writes
  //     them and their positions into the model's preallocated input tensors (small copies) and returns the
  //     key of the computation that produces the next logits;
  //   static_compute(key): that computation. It reads and writes only preallocated tensors and never reads
  //     a value on the host, so one CUDA graph per key can be captured and replayed;
  //   static_logits(): (B, V), the output tensor static_compute() writes.
  // Tensors stay the same from start() to start() for the same batch size (a new batch size reallocates).
  virtual bool has_static_step(int64_t /*batch*/) const { return false; }
  virtual int64_t static_prepare(const torch::Tensor& bytes);
  virtual void static_compute(int64_t key);
  //   static_next(): after static_compute(), the key of a further computation for the same byte, or -1 when
  //     the logits are ready (BLT: the entropy model's step first; its entropy, read on the host, decides
  //     whether the encoder also closes a patch and steps the global model).
  virtual int64_t static_next() { return -1; }
  const torch::Tensor& static_logits() const { return static_logits_; }

  // Row decoding: a batch of `slots` rows, each at its own position, so that rows restart, prefill, decode and
  // stop independently (a row joins or leaves between two calls without touching the others).
  // has_row_decoding(): the model implements it; the others decode a batch at one shared position (feed()).
  virtual bool has_row_decoding() const { return false; }
  // slots empty rows (not started); forgets the state of start()/feed().
  virtual void rows_begin(int64_t slots);
  // Feeds each named row (at most once per call; rows not named keep their state) -> logits (R, V), R =
  // feeds.size(): for each feed, the logits for the byte after its last id (after the restart if it has none).
  // every_id: logits (R, n, V) after each of the row's entries instead (the start id first where it restarts,
  // then its ids; n = the most entries of a row, the rest padding): speculative decoding checks a draft so.
  // At most context - 1 ids per row since its restart, as feed(); throws Error past that.
  virtual torch::Tensor rows_feed(const std::vector<RowFeed>& feeds, bool every_id = false);
  // Prefix reuse: makes row `to` hold what row `from` held after its first `ids` ids (from == to: forgets the
  // rest). Returns the ids kept, at most `ids` (fewer where the model keeps only some: MEGABYTE keeps up to
  // one byte before a patch boundary), or kRowNotStarted when nothing can be kept (restart the row).
  virtual int64_t rows_keep(int64_t from, int64_t to, int64_t ids);
  // Ids fed to a row since its restart (kRowNotStarted: never started).
  int64_t row_decoded(int64_t slot) const { return row_decoded_.at(size_t(slot)); }
  int64_t row_slots() const { return int64_t(row_decoded_.size()); }

  virtual std::vector<FlopsPart> flops() const = 0;
  // Forward FLOPs per byte of the counted parts (training = 3 x this, the papers' accounting).
  double forward_flops_per_byte() const;

  // ---- What the model is. Training, evaluation, generation and the commands ask these hooks; none of them
  // tests the model's name.
  // What a batch holds: bytes (false), or token ids of the checkpoint's tokenizer (true: the BPE baseline).
  virtual bool reads_tokens() const { return false; }
  // Bytes one input position covers as FLOPs are counted: 1 for byte models, bytes per token for token models.
  virtual double bytes_per_position() const { return 1.0; }
  // Token models: count FLOPs per byte at this measured bytes per token. Byte models ignore it.
  virtual void set_bytes_per_position(double /*bytes*/) {}
  // Forward FLOPs per input position (per token for token models, per byte for the others).
  virtual double forward_flops_per_position() const { return forward_flops_per_byte(); }
  // Activations a training step keeps per byte of a window, in floats (logits and what each block keeps for
  // backward); the memory check multiplies it by batch x context.
  virtual double activation_floats_per_byte() const;

  // Patches. fixed_patch_size(): P for models cutting every P bytes (MEGABYTE), else 0.
  virtual int64_t fixed_patch_size() const { return 0; }
  // Models that cut patches from the data (BLT): their FLOPs per byte follow the mean patch size.
  virtual bool dynamic_patches() const { return false; }
  // The mean patch size FLOPs are counted at (dynamic patches; NaN for the others).
  virtual double counted_patch_size() const { return NAN; }
  // Dynamic patches: count FLOPs at this mean patch size from now on (a logged training interval's).
  virtual void set_counted_patch_size(double /*bytes*/) {}
  // Patches the model learns to cut while it trains (H-Net): planned at its targets, measured as it goes.
  virtual bool learns_patches() const { return false; }
  // Dynamic patches: measures the mean patch size over bytes (B, T), counts FLOPs at it and returns it.
  virtual double count_patches_of(const torch::Tensor& /*bytes*/) { return NAN; }
  // Dynamic patches: the mean patch size of the training forwards since the last call, FLOPs now counted at it
  // (NaN when there were none, and for the others).
  virtual double take_training_patches() { return NAN; }
  // Dynamic patches in words for `info` and logs: "entropy patching, mean patch size 4.50 bytes".
  virtual std::string describe_patches() const;
  // Dynamic patches: a one-line warning when the patches measured last make the model pointless or broken
  // (BLT: almost byte-level or very coarse; H-Net: boundaries collapsed), else empty.
  virtual std::string patching_warning() const { return ""; }
  // The model runs an entropy model to cut its patches (BLT with entropy patching): training needs one.
  virtual bool runs_entropy_model() const { return false; }
  // Copies a trained entropy model's weights into this model's patcher (throws for models without one).
  virtual void attach_entropy_model(const LanguageModelImpl& entropy);
  // Sets the entropy threshold so that bytes (B, T) cut into patches of bytes_per_patch on average; returns it.
  virtual double calibrate_patching(const torch::Tensor& bytes, double bytes_per_patch);
  // This is an entropy model (next-byte entropies for another model's patcher, BLT's vocabulary of 260 ids).
  virtual bool is_entropy_model() const { return false; }
  // A stand-alone entropy model whose next-byte entropies cut this model's patches: BLT's own patcher, an
  // entropy model itself; nullptr for the others.
  virtual std::shared_ptr<LanguageModelImpl> entropy_patcher() { return nullptr; }
  // Learned chunks (H-Net): for bytes (1, T), the bytes that start a chunk at each stage, outer stage first;
  // empty for models that do not learn where to cut.
  virtual std::vector<std::vector<int64_t>> chunk_starts(const torch::Tensor& /*bytes*/) { return {}; }

  // ---- Training.
  // A loss the model adds to the next-byte loss, from its last training forward (H-Net's ratio loss), then
  // forgotten; undefined for the others.
  virtual torch::Tensor auxiliary_loss() { return {}; }
  // This parameter's learning rate as a multiple of --lr (H-Net's per-stage multipliers; 1 for the others).
  virtual double lr_multiplier(const std::string& /*parameter*/) const { return 1.0; }
  int64_t num_params() const;  // every parameter, BLT's entropy model included (what a checkpoint holds)
  // Parameters of the counted parts: the model's size as the papers report it (BLT without its entropy model).
  int64_t counted_params() const;

 protected:
  // Throws Error unless 0 <= bytes <= decoded() (rewind's argument).
  void check_rewind(int64_t bytes) const;
  // Throws Error unless every feed names a distinct slot, started or restarted, with ids in [0, vocab), and
  // stays within `max_ids` since its restart; returns the ids each row has fed after the call (not yet recorded).
  std::vector<int64_t> check_row_feeds(const std::vector<RowFeed>& feeds, int64_t max_ids, const char* unit,
                                       int64_t vocab) const;
  ModelConfig cfg_;
  int64_t decoded_ = 0;
  std::vector<int64_t> row_decoded_;  // row decoding: ids fed per row since its restart
  torch::Tensor static_logits_;       // (B, V)
};

using LanguageModel = std::shared_ptr<LanguageModelImpl>;

// Attention span of a static decoding step that needs `needed` cache positions: the next power of two
// (at least 64), at most `capacity`. One CUDA graph per span; each attends over at most twice what it needs.
int64_t static_span(int64_t needed, int64_t capacity);

// Activations a pre-norm block stack keeps for backward per byte, in floats, with positions_per_byte of its
// positions per byte (1 for byte-level stacks, 1/P for a global model over patches of P bytes).
double stack_activation_floats(const StackConfig& s, double positions_per_byte);

// Mean cross-entropy in nats over all positions. logits (B, T, V), bytes (B, T); the target of byte b is
// id b + offset (the model's vocab_offset()).
torch::Tensor byte_loss(const torch::Tensor& logits, const torch::Tensor& bytes, int64_t offset = 0);

}  // namespace bytelm
