// blt.cpp — BLT and its entropy model (see blt.h).
#include "model/blt.h"

#include <limits>

#include "blt/hash.h"
#include "util/device.h"
#include "util/error.h"

namespace bytelm {

namespace {

torch::nn::Linear linear(int64_t in, int64_t out) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
}

int64_t count_params(const torch::nn::Module& m, bool matmul_only) {
  int64_t n = 0;
  for (const auto& p : m.named_parameters()) {
    bool embedding = p.key().find("embed_tokens") != std::string::npos || p.key().find("hash_tok") != std::string::npos;
    if (!matmul_only || (p.value().dim() >= 2 && !embedding)) n += p.value().numel();
  }
  return n;
}

blt::PatcherOptions patcher_options(const PatchingConfig& p) {
  blt::PatcherOptions o;
  o.mode = p.mode == "static" ? blt::PatchingMode::Static
           : p.mode == "space" ? blt::PatchingMode::Space
           : p.mode == "byte"  ? blt::PatchingMode::Byte
                               : blt::PatchingMode::Entropy;
  if (p.monotonicity) {
    o.rule = blt::EntropyRule::Relative;
    o.relative_threshold = p.threshold;
  } else if (p.threshold_add > 0) {
    o.rule = blt::EntropyRule::Combined;
    o.threshold = p.threshold;
    o.relative_threshold = p.threshold_add;
  } else {
    o.rule = blt::EntropyRule::Global;
    o.threshold = p.threshold;
  }
  o.patch_size = p.patch_size;
  if (p.max_patch_length > 0) o.max_patch_length = p.max_patch_length;
  o.alignment = blt::Alignment::NextByte;  // causal at every position; equals HF on every scored position
  return o;
}

}  // namespace

// ---- entropy model --------------------------------------------------------------------------------

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
  auto ids = torch::cat({torch::full({B, 1}, blt::kBos, bytes.options()), bytes.narrow(1, 0, T - 1) + blt::kByteOffset}, 1);
  return patcher->logits(ids);  // (B, T, 260)
}

torch::Tensor EntropyModelImpl::start(int64_t batch) {
  caches_ = patcher->make_caches(batch, cfg_.context);
  decoded_ = 0;
  auto bos = torch::full({batch, 1}, blt::kBos, torch::TensorOptions().dtype(torch::kLong).device(patcher->lm_head->weight.device()));
  return patcher->logits(bos, 0, &caches_).select(1, 0);
}

torch::Tensor EntropyModelImpl::feed(const torch::Tensor& bytes) {
  const int64_t n = bytes.size(1);
  if (decoded_ + n > cfg_.context - 1) throw Error("decoding past the context of " + std::to_string(cfg_.context) + " bytes");
  auto out = patcher->logits(bytes + blt::kByteOffset, decoded_ + 1, &caches_);
  decoded_ += n;
  return out;
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

// ---- BLT parts ------------------------------------------------------------------------------------

LocalEncoderImpl::LocalEncoderImpl(const ModelConfig& cfg) : StackImpl(cfg.encoder, cfg.encoder.norm_eps, false) {
  const auto& e = cfg.encoder;
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(blt::kVocab, e.width));
  cross_attn_layers = register_module("cross_attn_layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < (cfg.encoder_cross_all_layers ? e.layers : 1); ++i)
    cross_attn_layers->push_back(CrossAttention(e.width, e.heads, e.norm_eps));
  patch_embedding_projection = register_module("patch_embedding_projection", linear(e.width, e.width * cfg.cross_attn_k));
}

GlobalTransformerImpl::GlobalTransformerImpl(const ModelConfig& cfg) : StackImpl(cfg.global, cfg.global.norm_eps, false) {
  const int64_t in = cfg.encoder.width * cfg.cross_attn_k;
  if (in != cfg.global.width)
    token_embedding_projection = register_module("token_embedding_projection", linear(in, cfg.global.width));
}

LocalDecoderImpl::LocalDecoderImpl(const ModelConfig& cfg) : StackImpl(cfg.decoder, cfg.decoder.norm_eps, true) {
  const auto& d = cfg.decoder;
  cross_attn_layers = register_module("cross_attn_layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < (cfg.decoder_cross_all_layers ? d.layers : 1); ++i)
    cross_attn_layers->push_back(CrossAttention(d.width, d.heads, d.norm_eps));
  patch_embedding_projection = register_module("patch_embedding_projection", linear(cfg.global.width, d.width * cfg.cross_attn_k));
}

BltInnerImpl::BltInnerImpl(const ModelConfig& cfg) {
  const int64_t tables = cfg.hash_functions * int64_t(cfg.hash_sizes.size());
  encoder_hash_tok_embedding = register_module("encoder_hash_tok_embedding", torch::nn::Embedding(tables * cfg.hash_vocab, cfg.encoder.width));
  local_encoder = register_module("local_encoder", LocalEncoder(cfg));
  global_transformer = register_module("global_transformer", GlobalTransformer(cfg));
  local_decoder = register_module("local_decoder", LocalDecoder(cfg));
  if (cfg.has_patcher) {
    patcher = register_module("patcher", Patcher(cfg.patcher));
    for (auto& p : patcher->parameters()) p.set_requires_grad(false);  // frozen, as in HF (patcher.eval())
  }
}

BltImpl::BltImpl(const ModelConfig& cfg)
    : LanguageModelImpl(cfg), rule_(patcher_options(cfg.patching)), mean_patch_size_(double(cfg.patching.patch_size)) {
  model = register_module("model", BltInner(cfg));
  lm_head = register_module("lm_head", linear(cfg.decoder.width, blt::kVocab));
  torch::NoGradGuard no_grad;
  init_weights(*model->encoder_hash_tok_embedding, cfg.init_std, 1);
  init_weights(*model->local_encoder, cfg.init_std, cfg.encoder.layers);
  init_weights(*model->global_transformer, cfg.init_std, cfg.global.layers);
  init_weights(*model->local_decoder, cfg.init_std, cfg.decoder.layers);
  init_weights(*lm_head, cfg.init_std, 1);
  if (model->patcher) init_weights(*model->patcher, cfg.init_std, cfg.patcher.layers);
}

void BltImpl::set_patching(const PatchingConfig& patching) {
  ModelConfig c = cfg_;
  c.patching = patching;
  c.validate();
  rule_ = blt::Patcher(patcher_options(patching));
  cfg_ = c;
}

std::vector<int64_t> BltImpl::patch_lengths(const std::vector<int64_t>& ids, const std::vector<float>& entropies) const {
  return rule_.patch_lengths(ids.data(), rule_.needs_entropies() ? entropies.data() : nullptr, int64_t(ids.size()));
}

torch::Tensor BltImpl::entropies(const torch::Tensor& ids) {
  if (!rule_.needs_entropies()) return {};
  torch::NoGradGuard no_grad;
  return entropy_of(model->patcher->logits(ids)).to(torch::kCPU).contiguous();  // (B, N)
}

torch::Tensor BltImpl::hash_embeddings(const torch::Tensor& ids) {
  const int64_t B = ids.size(0), N = ids.size(1), V = cfg_.hash_vocab;
  const int n_sizes = int(cfg_.hash_sizes.size());
  auto cpu = ids.to(torch::kCPU).contiguous();
  const int64_t* src = cpu.data_ptr<int64_t>();
  torch::Tensor sum;
  std::vector<int64_t> buckets(N);
  for (int f = 0; f < int(cfg_.hash_functions); ++f) {
    for (int s = 0; s < n_sizes; ++s) {
      const int64_t table = blt::table_index(f, s, n_sizes);
      auto rows = torch::empty({B, N}, torch::kLong);
      int64_t* dst = rows.data_ptr<int64_t>();
      for (int64_t b = 0; b < B; ++b) {
        blt::hash_buckets(src + b * N, N, int(cfg_.hash_sizes[s]), f, V, buckets.data());
        for (int64_t t = 0; t < N; ++t) dst[b * N + t] = blt::fused_row(buckets[t], table, V);
      }
      auto e = model->encoder_hash_tok_embedding(rows.to(ids.device()));  // (B, N, D_e)
      sum = sum.defined() ? sum + e : e;
    }
  }
  return sum;
}

torch::Tensor BltImpl::patch_inputs(const torch::Tensor& pooled, const torch::Tensor& states, const torch::Tensor& index,
                                    const torch::Tensor& valid) {
  const int64_t B = pooled.size(0), K = pooled.size(1), k = cfg_.cross_attn_k, De = cfg_.encoder.width;
  auto enc = model->local_encoder;
  auto queries = enc->patch_embedding_projection(pooled).reshape({B, K * k, De});
  // With cross-attention after every encoder layer, HF recomputes the patch queries from each layer's
  // states and keeps only the last layer's result, so only the last cross-attention layer matters.
  auto cross = enc->cross_attn_layers[enc->cross_attn_layers->size() - 1]->as<CrossAttentionImpl>();
  auto attended = cross->forward_grouped(queries, states, index.repeat_interleave(k, 1),
                                         valid.defined() ? valid.repeat_interleave(k, 1) : valid);
  // HF BltCrossAttention returns o_proj(attn) + query, and the encoder adds the query again.
  auto patches = (2 * queries + attended).reshape({B, K, k * De});
  auto gt = model->global_transformer;
  return gt->token_embedding_projection ? gt->token_embedding_projection(patches) : patches;
}

torch::Tensor BltImpl::decoder_kv(const torch::Tensor& g) {
  return model->local_decoder->patch_embedding_projection(g).reshape({g.size(0), -1, cfg_.decoder.width});
}

torch::Tensor BltImpl::decode(torch::Tensor h, const torch::Tensor& kv, const torch::Tensor& index, int64_t pos0,
                              std::vector<KVCache>* caches) {
  auto dec = model->local_decoder;
  return decode_with(std::move(h), kv, index, [&](BlockImpl& block, const torch::Tensor& y, size_t i) {
    return block.forward(y, dec->rope, pos0, caches ? &(*caches)[i] : nullptr);
  });
}

torch::Tensor BltImpl::forward(const torch::Tensor& bytes) {
  const int64_t B = bytes.size(0), T = bytes.size(1), N = T + 1, k = cfg_.cross_attn_k, De = cfg_.encoder.width;
  auto ids = torch::cat({torch::full({B, 1}, blt::kBos, bytes.options()), bytes + blt::kByteOffset}, 1);  // (B, N)

  // Patches (on the CPU): patch id of every position 0..N, where N is the next, unseen id.
  auto pid = torch::empty({B, N + 1}, torch::kLong);
  int64_t K = 0;
  const auto all_lengths = batch_patch_lengths(ids);
  for (int64_t b = 0; b < B; ++b) {
    const auto& lengths = all_lengths[b];
    int64_t* row = pid.data_ptr<int64_t>() + b * (N + 1);
    int64_t pos = 0;
    for (size_t j = 0; j < lengths.size(); ++j)
      for (int64_t i = 0; i < lengths[j] && pos <= N; ++i) row[pos++] = int64_t(j);
    K = std::max(K, row[N - 1] + 1);  // patches holding at least one of the N ids
  }
  // Bytes of each patch, padded to the longest: index (B, K, L) into the N positions, valid (B, K, L).
  int64_t L = 1;
  for (const auto& lengths : all_lengths)
    for (int64_t len : lengths) L = std::max(L, std::min(len, N));
  auto group_index = torch::zeros({B, K, L}, torch::kLong);
  auto group_valid = torch::zeros({B, K, L}, torch::kBool);
  int64_t* gi = group_index.data_ptr<int64_t>();
  bool* gv = group_valid.data_ptr<bool>();
  for (int64_t b = 0; b < B; ++b) {
    int64_t pos = 0;
    for (int64_t j = 0; j < int64_t(all_lengths[b].size()) && pos < N; ++j)
      for (int64_t i = 0; i < all_lengths[b][j] && pos < N; ++i, ++pos) {
        gi[(b * K + j) * L + i] = pos;
        gv[(b * K + j) * L + i] = true;
      }
  }
  const auto patch_groups = std::make_pair(group_index.to(ids.device()), group_valid.to(ids.device()));
  pid = pid.to(ids.device());
  auto enc_pid = pid.narrow(1, 0, N);          // (B, N): patch of each id
  auto dec_pid = pid.narrow(1, 1, N) - 1;      // (B, N): id t is decoded from the patch before that of t+1

  // Local encoder over ids; patch queries are max-pooled byte states, projected to k vectors each.
  auto enc = model->local_encoder;
  auto h = enc->forward(enc->embed_tokens(ids) + hash_embeddings(ids));  // (B, N, D_e)
  auto pooled = torch::zeros({B, K, De}, h.options())
                    .scatter_reduce(1, enc_pid.unsqueeze(-1).expand({B, N, De}), h, "amax", /*include_self=*/false);
  // Each patch's k queries attend to the bytes of that patch only: gather them (padded to the longest
  // patch) instead of masking a (K*k, N) score matrix.
  auto g_in = patch_inputs(pooled, h, patch_groups.first, patch_groups.second);

  // Latent global transformer over patches (causal).
  auto g = model->global_transformer->forward(g_in);  // (B, K, D_g)

  // Local decoder: bytes attend to the k vectors of their global state.
  auto kv = decoder_kv(g);  // (B, K*k, D_d)
  auto dec_index = dec_pid.unsqueeze(-1) * k + torch::arange(k, pid.options());  // (B, N, k)
  auto logits = decode(h, kv, dec_index, 0, nullptr);  // (B, N, 260)
  return logits.narrow(1, 0, T);
}

std::vector<std::vector<int64_t>> BltImpl::batch_patch_lengths(const torch::Tensor& ids) {
  const int64_t B = ids.size(0), N = ids.size(1);
  auto ent = entropies(ids);
  auto ids_cpu = ids.to(torch::kCPU).contiguous();
  std::vector<std::vector<int64_t>> out;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> idv(ids_cpu.data_ptr<int64_t>() + b * N, ids_cpu.data_ptr<int64_t>() + (b + 1) * N);
    std::vector<float> ev;
    if (ent.defined()) ev.assign(ent.data_ptr<float>() + b * N, ent.data_ptr<float>() + (b + 1) * N);
    out.push_back(patch_lengths(idv, ev));
  }
  return out;
}

double BltImpl::measure_patch_size(const torch::Tensor& bytes) {
  torch::NoGradGuard no_grad;
  auto ids = torch::cat({torch::full({bytes.size(0), 1}, blt::kBos, bytes.options()), bytes + blt::kByteOffset}, 1);
  double total = 0;
  for (const auto& lengths : batch_patch_lengths(ids)) total += blt::mean_bytes_per_patch(lengths);
  return total / double(bytes.size(0));
}

double BltImpl::calibrate_threshold(const torch::Tensor& bytes, double bytes_per_patch) {
  if (cfg_.patching.mode != "entropy")
    throw Error("--bytes-per-patch needs entropy patching (this config uses " + cfg_.patching.mode + " patching)");
  torch::NoGradGuard no_grad;
  auto ids = torch::cat({torch::full({bytes.size(0), 1}, blt::kBos, bytes.options()), bytes + blt::kByteOffset}, 1);
  auto ent = entropies(ids);  // (B, N) on the CPU
  auto ids_cpu = ids.to(torch::kCPU).contiguous();
  const int64_t B = ids.size(0), N = ids.size(1);
  std::vector<std::vector<int64_t>> rows(B);
  std::vector<std::vector<float>> row_ent(B);
  float max_entropy = 0;
  for (int64_t b = 0; b < B; ++b) {
    rows[b].assign(ids_cpu[b].data_ptr<int64_t>(), ids_cpu[b].data_ptr<int64_t>() + N);
    row_ent[b].assign(ent[b].data_ptr<float>(), ent[b].data_ptr<float>() + N);
    for (float h : row_ent[b]) max_entropy = std::max(max_entropy, h);
  }
  const PatchingConfig base = cfg_.patching;
  auto mean_at = [&](double threshold) {  // mean bytes per patch under the rule with this threshold
    PatchingConfig p = base;
    p.threshold = threshold;
    set_patching(p);
    double total = 0;
    for (int64_t b = 0; b < B; ++b) total += blt::mean_bytes_per_patch(patch_lengths(rows[b], row_ent[b]));
    return total / double(B);
  };
  double lo = 0, hi = double(max_entropy) + 1;
  const double reachable = mean_at(hi);
  if (reachable < bytes_per_patch) {
    set_patching(base);
    throw Error("--bytes-per-patch " + std::to_string(bytes_per_patch) + ": this entropy model and config reach at most " +
                std::to_string(reachable) + " bytes per patch");
  }
  for (int it = 0; it < 40; ++it) {  // the mean patch size grows with the threshold
    const double mid = 0.5 * (lo + hi);
    (mean_at(mid) < bytes_per_patch ? lo : hi) = mid;
  }
  mean_at(hi);
  return hi;
}

// ---- cached decoding --------------------------------------------------------------------------------

torch::Tensor BltImpl::start(int64_t batch) {
  const int64_t cap = cfg_.context + 1;  // BOS + context bytes
  const int64_t k = cfg_.cross_attn_k, De = cfg_.encoder.width, Dd = cfg_.decoder.width;
  if (rule_.needs_entropies()) patcher_caches_ = model->patcher->make_caches(batch, cap, std::move(patcher_caches_));
  encoder_caches_ = model->local_encoder->make_caches(batch, cap, std::move(encoder_caches_));
  decoder_caches_ = model->local_decoder->make_caches(batch, cap, std::move(decoder_caches_));
  rows_.resize(size_t(batch));
  for (auto& row : rows_) {
    row.global_caches = model->global_transformer->make_caches(1, cap, std::move(row.global_caches));
    row.ids.clear();
    row.ent.clear();
    row.open_start = row.closed = 0;
  }
  // Decoding state is allocated once per batch size and overwritten in place (captured CUDA graphs point
  // at it). Encoder states are the fp32 residual stream; patch keys/values come out of a projection
  // (bf16 under autocast).
  const auto dev = lm_head->weight.device();
  const auto longs = torch::TensorOptions().dtype(torch::kLong).device(dev);
  const auto floats = torch::TensorOptions().dtype(lm_head->weight.scalar_type()).device(dev);
  const auto kv_opts = floats.dtype(compute_dtype(dev, lm_head->weight.scalar_type()));
  if (!reusable(states_, {batch, cap, De}, floats) || !reusable(patch_kv_, {batch, k, Dd}, kv_opts)) {
    states_ = torch::zeros({batch, cap, De}, floats);
    patch_kv_ = torch::zeros({batch, k, Dd}, kv_opts);
    in_id_ = torch::zeros({1, 1}, longs);
    t_ = torch::zeros({}, longs);
    start_ = torch::zeros({}, longs);
    gpos_ = torch::zeros({}, longs);
    in_rows_ = torch::zeros({1, 1, cfg_.hash_functions * int64_t(cfg_.hash_sizes.size())}, longs);
    k_index_ = torch::arange(k, longs).view({1, 1, k});
    positions_ = torch::arange(cap, longs);
    entropy_out_ = torch::zeros({1}, floats.dtype(torch::kFloat32));
    static_logits_ = torch::zeros({1, blt::kVocab}, floats.dtype(torch::kFloat32));
  }
  decoded_ = 0;
  return step(std::vector<int64_t>(size_t(batch), blt::kBos));
}

torch::Tensor BltImpl::feed(const torch::Tensor& bytes) {
  const int64_t B = bytes.size(0), n = bytes.size(1);
  if (B != int64_t(rows_.size())) throw Error("feed: " + std::to_string(B) + " rows, but start() was called for " + std::to_string(rows_.size()));
  if (decoded_ + n > cfg_.context - 1) throw Error("decoding past the context of " + std::to_string(cfg_.context) + " bytes");
  auto cpu = bytes.to(torch::kCPU).contiguous();
  const int64_t* src = cpu.data_ptr<int64_t>();
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int64_t> ids(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) ids[b] = src[b * n + i] + blt::kByteOffset;
    out.push_back(step(ids));
    ++decoded_;
  }
  return torch::stack(out, 1);  // (B, n, 260)
}

std::vector<int64_t> BltImpl::hash_rows(int64_t b, int64_t t) const {
  const int n_sizes = int(cfg_.hash_sizes.size());
  const int64_t* ids = rows_[b].ids.data();
  std::vector<int64_t> rows;
  for (int f = 0; f < int(cfg_.hash_functions); ++f)
    for (int s = 0; s < n_sizes; ++s)
      rows.push_back(blt::fused_row(blt::ngram_bucket(ids, t, int(cfg_.hash_sizes[s]), f, cfg_.hash_vocab),
                                    blt::table_index(f, s, n_sizes), cfg_.hash_vocab));
  return rows;
}

bool BltImpl::closes_patch(int64_t b) {
  // Id t (the row's last one) closes its patch if id t+1 starts a new one.
  Row& row = rows_[b];
  if (patch_lengths(row.ids, row.ent).back() != 1) return false;
  ++row.closed;
  row.open_start = int64_t(row.ids.size());
  return true;
}

torch::Tensor BltImpl::decode_with(torch::Tensor h, const torch::Tensor& kv, const torch::Tensor& index,
                                   const std::function<torch::Tensor(BlockImpl&, const torch::Tensor&, size_t)>& block) {
  auto dec = model->local_decoder;
  for (size_t i = 0; i < dec->layers->size(); ++i) {
    if (i == 0 || cfg_.decoder_cross_all_layers)  // HF: h + (o_proj(attn) + h)
      h = 2 * h + dec->cross_attn_layers[i]->as<CrossAttentionImpl>()->forward_grouped(h, kv, index, {});
    h = block(*dec->layers[i]->as<BlockImpl>(), h, i);
  }
  return lm_head(dec->norm(h));
}

torch::Tensor BltImpl::step(const std::vector<int64_t>& ids) {
  const int64_t B = int64_t(ids.size()), t = int64_t(rows_[0].ids.size()), k = cfg_.cross_attn_k;
  for (int64_t b = 0; b < B; ++b) rows_[b].ids.push_back(ids[b]);
  const auto dev = lm_head->weight.device();
  auto idt = torch::tensor(ids, torch::kLong).to(dev).view({B, 1});
  // 1. The entropy model reads id t: its entropy decides whether id t+1 starts a patch.
  if (rule_.needs_entropies()) {
    auto e = entropy_of(model->patcher->logits(idt, t, &patcher_caches_)).to(torch::kCPU).contiguous();  // (B, 1)
    for (int64_t b = 0; b < B; ++b) rows_[b].ent.push_back(e.data_ptr<float>()[b]);
  }
  // 2. The encoder reads id t (byte embedding + hash n-grams ending at t).
  auto enc = model->local_encoder;
  std::vector<int64_t> all_rows;
  for (int64_t b = 0; b < B; ++b) {
    auto r = hash_rows(b, t);
    all_rows.insert(all_rows.end(), r.begin(), r.end());
  }
  auto row_t = torch::tensor(all_rows, torch::kLong).to(dev).view({B, 1, -1});
  auto x = enc->embed_tokens(idt) + model->encoder_hash_tok_embedding(row_t).sum(2);  // (B, 1, D_e)
  auto h = enc->forward(x, t, &encoder_caches_);
  states_.narrow(1, t, 1).copy_(h);
  // 3. Rows whose id t+1 starts a patch have completed the patch holding t: pool it and step that row's
  //    global model (batch 1: rows close patches at different bytes).
  for (int64_t b = 0; b < B; ++b) {
    const int64_t first = rows_[b].open_start, global_pos = rows_[b].closed;
    if (!closes_patch(b)) continue;
    auto states = states_.select(0, b).narrow(0, first, t - first + 1).unsqueeze(0);  // (1, L, D_e)
    auto all = torch::arange(states.size(1), torch::TensorOptions().dtype(torch::kLong).device(dev)).view({1, 1, -1});
    auto g_in = patch_inputs(std::get<0>(states.max(1, true)), states, all, {});
    auto g = model->global_transformer->forward(g_in, global_pos, &rows_[b].global_caches);  // (1, 1, D_g)
    patch_kv_.narrow(0, b, 1).copy_(decoder_kv(g));
  }
  // 4. The decoder predicts id t+1 from the encoder state of t and the row's current global state.
  auto logits = decode(h, patch_kv_, k_index_.expand({B, 1, k}), t, &decoder_caches_);
  return logits.view({B, blt::kVocab});
}

// ---- static steps (CUDA graphs) ---------------------------------------------------------------------
// The same computation as step(), split where the host must look: the entropy model's step, then its
// entropy decides (on the host) whether this id closes a patch; then everything else in one computation.

int64_t BltImpl::static_prepare(const torch::Tensor& bytes) {
  if (decoded_ + 1 > cfg_.context - 1) throw Error("decoding past the context of " + std::to_string(cfg_.context) + " bytes");
  const int64_t cap = cfg_.context + 1;
  if (cap >= (int64_t(1) << 19)) throw Error("BLT static steps support contexts below 524288 bytes");
  if (rows_.size() != 1) throw Error("BLT static steps decode one sequence (batch 1)");
  Row& row = rows_[0];
  // The id is needed on the host anyway: its hash n-grams and the patching rule read it.
  const int64_t id = bytes.view({-1}).select(0, 0).item<int64_t>() + blt::kByteOffset;
  ++decoded_;
  const int64_t t = int64_t(row.ids.size());
  row.ids.push_back(id);
  in_id_.fill_(id);
  t_.fill_(t);
  for (auto* caches : {&patcher_caches_, &encoder_caches_, &decoder_caches_})
    for (auto& c : *caches) c.len = t + 1;
  static_phase_ = 1;
  if (rule_.needs_entropies()) return patcher_key(static_span(t + 1, cap));
  return static_next();
}

int64_t BltImpl::static_next() {
  if (static_phase_ != 1) return -1;
  static_phase_ = 2;
  Row& row = rows_[0];
  const int64_t t = int64_t(row.ids.size()) - 1, cap = cfg_.context + 1;
  if (rule_.needs_entropies()) row.ent.push_back(entropy_out_.item<float>());  // waits for the entropy model
  in_rows_.copy_(torch::tensor(hash_rows(0, t), torch::kLong).view({1, 1, -1}));
  start_.fill_(row.open_start);
  gpos_.fill_(row.closed);
  const int64_t global_span = static_span(row.closed + 1, cap);
  const bool close = closes_patch(0);
  if (close)  // the static global step writes position row.closed - 1 (what the cached path would)
    for (auto& c : row.global_caches) c.len = row.closed;
  return rest_key(static_span(t + 1, cap), close ? global_span : 0);
}

void BltImpl::static_compute(int64_t key) {
  const int64_t span = key & ((int64_t(1) << 19) - 1);
  if ((key >> 40) == 1) {  // the entropy model reads id t
    auto patcher = model->patcher;
    auto logits = patcher->lm_head(patcher->step(patcher->embed_tokens(in_id_), t_, span, patcher_caches_));
    entropy_out_.copy_(entropy_of(logits).view({1}));
    return;
  }
  const int64_t global_span = (key >> 20) & ((int64_t(1) << 19) - 1);
  auto enc = model->local_encoder;
  auto x = enc->embed_tokens(in_id_) + model->encoder_hash_tok_embedding(in_rows_).sum(2);  // (1, 1, D_e)
  auto h = enc->step(x, t_, span, encoder_caches_);
  states_.index_copy_(1, t_.view({1}), h.to(states_.scalar_type()));
  if (global_span > 0) {
    // The patch [start, t] closes: pool and cross-attend over those positions of a fixed window.
    auto states = states_.narrow(1, 0, span);                                // (1, span, D_e)
    auto pos = positions_.narrow(0, 0, span);
    auto keep = pos.ge(start_).logical_and(pos.le(t_));                      // (span)
    auto pooled = states.masked_fill(keep.logical_not().view({1, span, 1}), -INFINITY).amax(1, true);
    auto g_in = patch_inputs(pooled, states, pos.view({1, 1, span}), keep.view({1, 1, span}));
    auto g = model->global_transformer->step(g_in, gpos_, global_span, rows_[0].global_caches);  // (1, 1, D_g)
    patch_kv_.copy_(decoder_kv(g));
  }
  auto dec = model->local_decoder;
  auto logits = decode_with(h, patch_kv_, k_index_, [&](BlockImpl& block, const torch::Tensor& y, size_t i) {
    return block.step(y, dec->rope, t_, span, decoder_caches_[i]);
  });
  static_logits_.copy_(logits.view({1, blt::kVocab}));
}

std::vector<FlopsPart> BltImpl::flops() const {
  const double P = mean_patch_size_, T = double(cfg_.context), k = double(cfg_.cross_attn_k);
  const double De = double(cfg_.encoder.width), Dg = double(cfg_.global.width), Dd = double(cfg_.decoder.width);
  const double enc_cross = 1;  // even with cross_attn_all_layers only the last layer's result is used
  const double dec_cross = cfg_.decoder_cross_all_layers ? double(cfg_.decoder.layers) : 1;
  FlopsPart e, g, d, p;
  e.name = "encoder";
  e.params = count_params(*model->local_encoder, false) + model->encoder_hash_tok_embedding->weight.numel();
  e.matmul_params = count_params(*model->local_encoder, true);
  // per byte: blocks, cross-attention keys/values; per patch: pooled projection, queries, output.
  e.matmul_flops = stack_matmul_flops(cfg_.encoder) + enc_cross * 2 * (2 * De * De) +
                   (2 * De * k * De + enc_cross * 2 * (2 * k * De * De)) / P;
  e.attention_flops = stack_attention_flops(cfg_.encoder, T) + enc_cross * 4 * k * De;
  g.name = "global";
  g.params = count_params(*model->global_transformer, false);
  g.matmul_params = count_params(*model->global_transformer, true);
  g.matmul_flops = (stack_matmul_flops(cfg_.global) + (k * De != Dg ? 2 * k * De * Dg : 0)) / P;
  g.attention_flops = stack_attention_flops(cfg_.global, T / P) / P;
  d.name = "decoder";
  d.params = count_params(*model->local_decoder, false) + lm_head->weight.numel();
  d.matmul_params = count_params(*model->local_decoder, true) + lm_head->weight.numel();
  d.matmul_flops = stack_matmul_flops(cfg_.decoder) + dec_cross * 2 * (2 * Dd * Dd) + 2 * Dd * blt::kVocab +
                   (2 * Dg * k * Dd + dec_cross * 2 * (2 * k * Dd * Dd)) / P;
  d.attention_flops = stack_attention_flops(cfg_.decoder, T) + dec_cross * 4 * k * Dd;
  std::vector<FlopsPart> parts{e, g, d};
  if (model->patcher) {
    p.name = "entropy";
    p.counted = false;  // the paper's accounting leaves the entropy model out
    p.params = count_params(*model->patcher, false);
    p.matmul_params = count_params(*model->patcher, true);
    p.matmul_flops = stack_matmul_flops(cfg_.patcher) + 2.0 * cfg_.patcher.width * blt::kVocab;
    p.attention_flops = stack_attention_flops(cfg_.patcher, T);
    parts.push_back(p);
  }
  return parts;
}

void load_patcher(BltImpl& blt, const LanguageModelImpl& entropy_model) {
  const auto& ec = entropy_model.config();
  if (ec.model != "entropy")
    throw Error("--entropy-model: checkpoint is a " + ec.model + " model (256 byte values), not an entropy model over 260 ids");
  const auto& pc = blt.config().patcher;
  if (!blt.model->patcher) throw Error("--entropy-model: the BLT config has no patcher_config");
  if (pc.layers != ec.global.layers || pc.width != ec.global.width || pc.heads != ec.global.heads ||
      pc.hidden() != ec.global.hidden())
    throw Error("--entropy-model: entropy model (" + std::to_string(ec.global.layers) + " x " +
                std::to_string(ec.global.width) + ") does not fit the BLT config's patcher_config (" +
                std::to_string(pc.layers) + " x " + std::to_string(pc.width) + ")");
  torch::NoGradGuard no_grad;
  auto dst = blt.model->patcher->named_parameters();
  for (const auto& src : entropy_model.named_parameters()) {
    const std::string name = src.key().substr(std::string("patcher.").size());
    auto* target = dst.find(name);
    if (!target || target->sizes() != src.value().sizes()) throw Error("--entropy-model: tensor '" + name + "' does not fit");
    target->copy_(src.value());
  }
}

}  // namespace bytelm
