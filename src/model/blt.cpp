// blt.cpp — BLT's parts (local encoder, latent global transformer, local decoder), the full forward pass,
// FLOPs accounting and loading a patcher (see blt.h; patching in blt_patching.cpp, decoding in blt_decode.cpp).
#include "model/blt.h"

#include <algorithm>
#include <limits>

#include "blt/hash.h"
#include "model/module_util.h"
#include "util/device.h"
#include "util/error.h"

namespace bytelm {

// ---- BLT parts ------------------------------------------------------------------------------------

LocalEncoderImpl::LocalEncoderImpl(const ModelConfig& cfg) : StackImpl(cfg.encoder, cfg.encoder.norm_eps, false) {
  const auto& e = cfg.encoder;
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(blt::kVocab, e.width));
  cross_attn_layers = register_module("cross_attn_layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < (cfg.encoder_cross_all_layers ? e.layers : 1); ++i)
    cross_attn_layers->push_back(CrossAttention(e.width, e.heads, e.norm_eps));
  patch_embedding_projection =
      register_module("patch_embedding_projection", linear(e.width, e.width * cfg.cross_attn_k));
}

GlobalTransformerImpl::GlobalTransformerImpl(const ModelConfig& cfg)
    : StackImpl(cfg.global, cfg.global.norm_eps, false) {
  const int64_t in = cfg.encoder.width * cfg.cross_attn_k;
  if (in != cfg.global.width)
    token_embedding_projection = register_module("token_embedding_projection", linear(in, cfg.global.width));
}

LocalDecoderImpl::LocalDecoderImpl(const ModelConfig& cfg) : StackImpl(cfg.decoder, cfg.decoder.norm_eps, true) {
  const auto& d = cfg.decoder;
  cross_attn_layers = register_module("cross_attn_layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < (cfg.decoder_cross_all_layers ? d.layers : 1); ++i)
    cross_attn_layers->push_back(CrossAttention(d.width, d.heads, d.norm_eps));
  patch_embedding_projection =
      register_module("patch_embedding_projection", linear(cfg.global.width, d.width * cfg.cross_attn_k));
}

BltInnerImpl::BltInnerImpl(const ModelConfig& cfg) {
  const int64_t tables = cfg.hash_functions * int64_t(cfg.hash_sizes.size());
  encoder_hash_tok_embedding =
      register_module("encoder_hash_tok_embedding", torch::nn::Embedding(tables * cfg.hash_vocab, cfg.encoder.width));
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

torch::Tensor BltImpl::patch_inputs(const torch::Tensor& pooled, const torch::Tensor& states,
                                    const torch::Tensor& index, const torch::Tensor& valid) {
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
  if (is_training())
    for (const auto& lengths : all_lengths) {
      tally_sum_ += blt::mean_bytes_per_patch(lengths);
      ++tally_rows_;
    }
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
  auto enc_pid = pid.narrow(1, 0, N);      // (B, N): patch of each id
  auto dec_pid = pid.narrow(1, 1, N) - 1;  // (B, N): id t is decoded from the patch before that of t+1

  // Local encoder over ids; patch queries are max-pooled byte states, projected to k vectors each.
  auto enc = model->local_encoder;
  auto h = enc->forward(enc->embed_tokens(ids) + hash_embeddings(ids));  // (B, N, D_e)
  auto pooled = torch::zeros({B, K, De}, h.options())
                    .scatter_reduce(1, enc_pid.unsqueeze(-1).expand({B, N, De}), h, "amax", /*include_self=*/false);
  // Each patch's k queries attend to the bytes of that patch only: gather them (padded to the longest
  // patch) instead of masking a (K*k, N) score matrix.
  auto g_in = patch_inputs(pooled, h, patch_groups.first, patch_groups.second);

  // Latent global transformer over patches (causal).
  torch::Tensor g;  // (B, K, D_g)
  switch (global_ablation_) {
    case GlobalAblation::kNone:
      g = model->global_transformer->forward(g_in);
      break;
    case GlobalAblation::kSkip:
      g = g_in;
      break;
    case GlobalAblation::kZero:
      g = torch::zeros_like(g_in);
      break;
  }

  // Local decoder: bytes attend to the k vectors of their global state.
  auto kv = decoder_kv(g);                                                       // (B, K*k, D_d)
  auto dec_index = dec_pid.unsqueeze(-1) * k + torch::arange(k, pid.options());  // (B, N, k)
  auto logits = decode(h, kv, dec_index, 0, nullptr);                            // (B, N, 260)
  return logits.narrow(1, 0, T);
}

double BltImpl::activation_floats_per_byte() const {
  // Logits; encoder and decoder over every byte; the global model over patches of the config's size.
  const double patch = double(std::max<int64_t>(1, cfg_.patching.patch_size));
  return 3.0 * double(kByteVocab) + stack_activation_floats(cfg_.encoder, 1.0) +
         stack_activation_floats(cfg_.decoder, 1.0) + stack_activation_floats(cfg_.global, 1.0 / patch);
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
  if (!entropy_model.is_entropy_model())
    throw Error("--entropy-model: checkpoint is a " + ec.model +
                " model (256 byte values), not an entropy model over 260 ids");
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
    if (!target || target->sizes() != src.value().sizes())
      throw Error("--entropy-model: tensor '" + name + "' does not fit");
    target->copy_(src.value());
  }
}

}  // namespace bytelm
