// blocks.h — the one set of building blocks every model is made of: RMSNorm, rotary positions,
// causal self-attention with a KV cache, SwiGLU MLP, a pre-norm transformer block and a stack of them.
// Shapes: B batch, T sequence positions, D width, H heads, Dh = D / H head dim.
// Tensor names follow the Llama/Hugging Face convention (self_attn.q_proj, mlp.gate_proj, ...).
#pragma once
#include <torch/torch.h>

#include <vector>

#include "model/config.h"

namespace bytelm {

// Keys/values of one attention layer for incremental decoding.
// k, v: (B, H, capacity, Dh), preallocated; positions [0, len) are valid.
// positions: (capacity) int64 0..capacity-1 on the same device, for the static-shape step's mask.
struct KVCache {
  torch::Tensor k, v, positions;
  int64_t len = 0;
};
// Prefix reuse: positions [0, n) of cache row `from` copied into row `to`, in every layer (nothing when equal).
void copy_cache_rows(std::vector<KVCache>& caches, int64_t from, int64_t to, int64_t n);

// Row decoding (every row of the cache at its own position; model.h, rows_feed): which cache rows one call
// touches and where its entries sit. Built once per call by make_row_batch() and read by every layer.
// R rows of the call, n entries each (the first counts[r] real, the rest padding), S rows in the cache.
struct RowBatch {
  torch::Tensor rows;       // (R) int64: the cache row of each input row; undefined: rows 0..S-1 in order
  torch::Tensor positions;  // (R, n) int64: position of each entry (padding clamped to the capacity)
  torch::Tensor write_row, write_pos, write_src;  // (M): cache row, position and flat input index r*n+i
  torch::Tensor keep;                             // (R, 1, n, span) bool: entry i of row r sees keys <= its own
  int64_t span = 0;                               // key positions attended: [0, span)
  int64_t capacity = 0;
  bool writes = false;  // M > 0
};
// rows: the cache row of each input row, of `slots` cache rows (all of them in order: no gather); pos0[r],
// counts[r]: position and number of row r's real entries; n >= every count. Throws Error when a row would
// pass `capacity`.
RowBatch make_row_batch(const std::vector<int64_t>& rows, int64_t slots, const std::vector<int64_t>& pos0,
                        const std::vector<int64_t>& counts, int64_t n, int64_t capacity, const torch::Device& device);
// Host indices -> an int64 tensor (v.size()) of its own on `device` (a copy on the CPU too).
torch::Tensor long_tensor(const std::vector<int64_t>& v, const torch::Device& device);
// The real entries of x (R, H, n, Dh) laid out as `rb` says -> (M, H, Dh), in rb.write_* order.
torch::Tensor row_entries(const torch::Tensor& x, const RowBatch& rb);

struct RMSNormImpl : torch::nn::Module {
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);  // (..., D) -> (..., D)
  torch::Tensor weight;                           // (D)
  double eps;
};
TORCH_MODULE(RMSNorm);

// Rotary position tables for one head dim, grown on demand. Pair layout: dims (i, i + Dh/2)
// rotate together ("rotate half", as in Llama), or, interleaved, dims (2i, 2i+1) (BLT: the official
// code and Hugging Face's Blt both rotate adjacent pairs).
class Rotary {
 public:
  Rotary() = default;
  Rotary(int64_t head_dim, double theta, bool interleaved = false)
      : head_dim_(head_dim), theta_(theta), interleaved_(interleaved) {}
  bool enabled() const { return theta_ > 0; }
  // x: (B, H, T, Dh) at positions pos0 .. pos0+T-1 -> same shape.
  torch::Tensor apply(const torch::Tensor& x, int64_t pos0);
  // x: (B, H, 1, Dh) at the position held in `pos` (0-dim int64 on x's device): no host read, so it can be
  // captured in a CUDA graph. The tables must have been reserved for that position.
  torch::Tensor apply_at(const torch::Tensor& x, const torch::Tensor& pos);
  // x: (R, H, n, Dh), each entry at its own position: positions (R, n) int64, within `capacity`.
  torch::Tensor apply_rows(const torch::Tensor& x, const torch::Tensor& positions, int64_t capacity);
  void reserve(int64_t positions, const torch::Device& device) {
    if (enabled()) ensure(positions, device);
  }

 private:
  void ensure(int64_t positions, const torch::Device& device);
  // cos, sin broadcast over x's heads; group > 0: one table per `group` consecutive (row, head) pairs of x
  // (per-row tables for row decoding, group = heads), for the CPU loop.
  torch::Tensor rotate(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                       int64_t group = 0) const;
  int64_t head_dim_ = 0;
  double theta_ = 0;
  bool interleaved_ = false;
  torch::Tensor cos_, sin_;  // (capacity, Dh/2), fp32
};

// q K^T / sqrt(Dh): q (..., Tq, Dh), k (..., Tk, Dh) -> (..., Tq, Tk).
torch::Tensor scaled_scores(const torch::Tensor& q, const torch::Tensor& k);

// Scaled dot-product attention. q: (B, H, Tq, Dh), k, v: (B, H, Tk, Dh) -> (B, H, Tq, Dh).
// Query i sits at key position (Tk - Tq + i) and, if causal, sees keys 0..that position.
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, bool causal);
// Same with an additive float mask broadcastable to (B, H, Tq, Tk): 0 where allowed, a very negative
// finite number elsewhere (finite so a query that may see nothing gets a uniform average, not NaN).
torch::Tensor attention_with_mask(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  const torch::Tensor& additive_mask);
// Same with a boolean mask broadcastable to (B, H, Tq, Tk), true where a key takes part.
torch::Tensor attention_keep(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             const torch::Tensor& keep);

// Cross-attention (BLT): RMSNorm on queries (q_norm) and on keys/values (k_norm), no rotary.
// Returns o_proj(attention) only; callers add their residuals (see blt.cpp).
struct CrossAttentionImpl : torch::nn::Module {
  CrossAttentionImpl(int64_t width, int64_t heads, double eps);
  // x: (B, Q, D) queries; kv: (B, S, D); mask: additive (B, 1, Q, S) -> (B, Q, D)
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& kv, const torch::Tensor& mask);
  // The same when each query may see only a small group of the keys: query i attends to kv[index[i, :]]
  // where valid[i, :] (undefined = all valid). index, valid: (B, Q, G). Equals forward() with the
  // matching mask, in O(Q * G) instead of O(Q * S) time and memory.
  torch::Tensor forward_grouped(const torch::Tensor& x, const torch::Tensor& kv, const torch::Tensor& index,
                                const torch::Tensor& valid);
  RMSNorm q_norm{nullptr}, k_norm{nullptr};
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  int64_t heads, head_dim;
};
TORCH_MODULE(CrossAttention);

struct AttentionImpl : torch::nn::Module {
  AttentionImpl(int64_t width, int64_t heads);
  // x: (B, T, D) at positions pos0.. ; with a cache, appends this step's keys/values and attends to all.
  torch::Tensor forward(const torch::Tensor& x, Rotary& rope, int64_t pos0, KVCache* cache);
  // Static-shape decoding step (CUDA-graph ready): x (B, 1, D) at the position in `pos` (0-dim int64 on the
  // device); writes its key/value at that position and attends to cache positions [0, span) <= pos.
  // Shapes depend only on (B, span), never on the position.
  torch::Tensor step(const torch::Tensor& x, Rotary& rope, const torch::Tensor& pos, int64_t span, KVCache& cache);
  // Row decoding: x (R, n, D) laid out as `rb` says; writes the real entries' keys/values into their rows
  // and positions, then each entry attends to its own row's keys up to its position. -> (R, n, D).
  torch::Tensor rows(const torch::Tensor& x, Rotary& rope, const RowBatch& rb, KVCache& cache);
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  int64_t heads, head_dim;
};
TORCH_MODULE(Attention);

struct SwiGLUImpl : torch::nn::Module {
  SwiGLUImpl(int64_t width, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);  // (..., D) -> (..., D): down(silu(gate x) * up x)
  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(SwiGLU);

// Pre-norm block: h = x + Attn(RMSNorm(x)); out = h + MLP(RMSNorm(h)).
struct BlockImpl : torch::nn::Module {
  BlockImpl(const StackConfig& cfg, double eps);
  torch::Tensor forward(const torch::Tensor& x, Rotary& rope, int64_t pos0, KVCache* cache);
  torch::Tensor step(const torch::Tensor& x, Rotary& rope, const torch::Tensor& pos, int64_t span, KVCache& cache);
  torch::Tensor rows(const torch::Tensor& x, Rotary& rope, const RowBatch& rb, KVCache& cache);
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  Attention self_attn{nullptr};
  SwiGLU mlp{nullptr};
};
TORCH_MODULE(Block);

// `layers` blocks followed by a final RMSNorm ("norm") unless final_norm is false.
struct StackImpl : torch::nn::Module {
  StackImpl(const StackConfig& cfg, double eps, bool final_norm = true);
  // x: (B, T, D) at positions pos0..; caches: one per layer or null for a full (training) forward.
  torch::Tensor forward(const torch::Tensor& x, int64_t pos0 = 0, std::vector<KVCache>* caches = nullptr);
  // The blocks alone, without the final norm.
  torch::Tensor blocks(const torch::Tensor& x, int64_t pos0 = 0, std::vector<KVCache>* caches = nullptr);
  // Static-shape decoding step through every layer and the final norm (see AttentionImpl::step).
  torch::Tensor step(const torch::Tensor& x, const torch::Tensor& pos, int64_t span, std::vector<KVCache>& caches);
  // Row decoding through every layer and the final norm (see AttentionImpl::rows): x (R, n, D) -> (R, n, D).
  torch::Tensor rows(const torch::Tensor& x, const RowBatch& rb, std::vector<KVCache>& caches);
  // Empty caches for batch B and up to `capacity` positions, in the device and dtype the keys are computed
  // in. Reuses `old` (same tensors, so CUDA graphs that point at them stay valid) when it fits.
  std::vector<KVCache> make_caches(int64_t batch, int64_t capacity, std::vector<KVCache> old = {});
  StackConfig cfg;
  torch::nn::ModuleList layers;
  RMSNorm norm{nullptr};
  Rotary rope;
};
TORCH_MODULE(Stack);

// layer(x) for a bias-free Linear, x (..., in) -> (..., out). A single row on the CPU in fp32 without
// autocast (batch-1 decoding) goes through a matrix-vector product instead: LibTorch sends a (1, in) x
// (in, out) product to BLAS gemm, which packs (copies) all of W to multiply one row; gemv reads W once.
// Same value up to float rounding; training (many rows) and the GPU take layer(x) unchanged.
torch::Tensor project(torch::nn::Linear& layer, const torch::Tensor& x);

// Whether a preallocated decoding tensor can be kept (and overwritten in place, so that captured CUDA graphs
// that point at it stay valid): defined, with these sizes, dtype and device, and made in the current
// inference mode (tensors made under InferenceMode cannot be used outside it, nor the other way round).
bool reusable(const torch::Tensor& t, torch::IntArrayRef sizes, const torch::TensorOptions& options);

// Normal(0, std) for every Linear/Embedding weight of `module`; output projections (o_proj,
// down_proj) get std / sqrt(2 * layers) as in GPT-2, so the residual stream does not grow with depth.
void init_weights(torch::nn::Module& module, double std, int64_t layers);

// Matmul FLOPs of one forward pass of one position through the stack, and attention FLOPs per
// position at a given attended length (QK^T and AV, 2 * 2 * L * ctx * D, no causal halving; PaLM's accounting).
double stack_matmul_flops(const StackConfig& cfg);
double stack_attention_flops(const StackConfig& cfg, double ctx);

}  // namespace bytelm
