// config_blt.cpp — BLT's configuration in Hugging Face's BltConfig layout (encoder_config, decoder_config,
// global_config, patcher_config, hash n-gram keys, patching keys), read, written and validated.
#include <nlohmann/json.hpp>

#include "model/config_json.h"
#include "util/error.h"

namespace bytelm {

using nlohmann::json;

// ---- BLT: the Hugging Face BltConfig layout -------------------------------------------------------
// Unknown keys are tolerated here (HF writes many bookkeeping keys); the ones bytelm uses are checked.

namespace {

StackConfig hf_stack(const json& j, const std::string& name, double default_theta) {
  if (!j.is_object()) throw Error("config: '" + name + "' must be an object");
  auto get = [&](const char* key, bool required, int64_t fallback) { return get_int(j, key, fallback, required); };
  StackConfig s;
  s.width = get("hidden_size", true, 0);
  s.heads = get("num_attention_heads", true, 0);
  s.layers = get("num_hidden_layers", true, 0);
  if (j.contains("num_key_value_heads") && !j.at("num_key_value_heads").is_null() &&
      j.at("num_key_value_heads").get<int64_t>() != s.heads)
    throw Error("config: " + name +
                ": grouped-query attention (num_key_value_heads != num_attention_heads) is not supported");
  s.mlp_hidden = j.contains("intermediate_size") && !j.at("intermediate_size").is_null()
                     ? get("intermediate_size", true, 0)
                     : int64_t(8 * s.width / 3);
  s.norm_eps = get_num(j, "rms_norm_eps", 1e-5);
  s.rope_theta = default_theta;
  if (j.contains("rope_parameters") && j.at("rope_parameters").is_object())
    s.rope_theta = get_num(j.at("rope_parameters"), "rope_theta", default_theta);
  else if (j.contains("rope_theta"))
    s.rope_theta = get_num(j, "rope_theta", default_theta);
  if (s.rope_theta <= 0) throw Error("config: " + name + ": rope_theta must be > 0");
  if (j.contains("hidden_act") && j.at("hidden_act") != "silu")
    throw Error("config: " + name + ": only hidden_act silu is supported");
  s.rope_interleaved = true;
  return s;
}

json hf_stack_json(const StackConfig& s, int64_t max_pos) {
  return json{{"hidden_size", s.width},
              {"num_attention_heads", s.heads},
              {"num_key_value_heads", s.heads},
              {"num_hidden_layers", s.layers},
              {"intermediate_size", s.hidden()},
              {"rms_norm_eps", s.norm_eps},
              {"rope_parameters", {{"rope_theta", s.rope_theta}, {"rope_type", "default"}}},
              {"max_position_embeddings", max_pos},
              {"hidden_act", "silu"},
              {"dropout", 0.0}};
}

}  // namespace

ModelConfig blt_from_hf_json(const json& j) {
  ModelConfig c;
  c.model = "blt";
  for (const char* key : {"encoder_config", "decoder_config", "global_config"})
    if (!j.contains(key)) throw Error(std::string("config: BLT config has no '") + key + "'");
  if (j.contains("vocab_size") && j.at("vocab_size") != 260) throw Error("config: BLT vocab_size must be 260");
  const json& enc = j.at("encoder_config");
  const json& dec = j.at("decoder_config");
  c.encoder = hf_stack(enc, "encoder_config", 500000.0);
  c.decoder = hf_stack(dec, "decoder_config", 500000.0);
  c.global = hf_stack(j.at("global_config"), "global_config", 500000.0);
  c.has_patcher =
      j.value("patch_in_forward", true) && j.contains("patcher_config") && j.at("patcher_config").is_object();
  if (c.has_patcher) {
    c.patcher = hf_stack(j.at("patcher_config"), "patcher_config", 10000.0);
    c.patcher_context = get_int(j.at("patcher_config"), "max_position_embeddings", 8192, false);
  }
  c.cross_attn_k = get_int(j, "cross_attn_k", 2, false);
  c.encoder_cross_all_layers = enc.value("cross_attn_all_layers", false);
  c.decoder_cross_all_layers = dec.value("cross_attn_all_layers", true);
  if (j.contains("encoder_hash_byte_group_size") && !j.at("encoder_hash_byte_group_size").is_null()) {
    const json& sizes = j.at("encoder_hash_byte_group_size");
    if (!sizes.is_array()) throw Error("config: encoder_hash_byte_group_size must be a list");
    c.hash_sizes.clear();
    for (const auto& s : sizes) {
      if (!s.is_number_integer()) throw Error("config: encoder_hash_byte_group_size must hold integers");
      c.hash_sizes.push_back(s.get<int64_t>());
    }
  }
  c.hash_vocab = get_int(j, "encoder_hash_byte_group_vocab", 500002, false);
  c.hash_functions = get_int(j, "encoder_hash_byte_group_nb_functions", 1, false);
  c.max_patches = get_int(j.at("global_config"), "max_position_embeddings", 4096, false);
  c.context = get_int(j, "bytelm_context", get_int(enc, "max_position_embeddings", 24576, false), false);
  c.init_std = get_num(j, "initializer_range", 0.02);
  c.norm_eps = c.encoder.norm_eps;
  auto& p = c.patching;
  p.mode = j.value("patching_mode", std::string("entropy"));
  p.threshold = j.contains("patching_threshold") && !j.at("patching_threshold").is_null()
                    ? get_num(j, "patching_threshold", p.threshold)
                    : p.threshold;
  p.patch_size = get_int(j, "patch_size", 4, false);
  p.max_patch_length = j.contains("max_patch_length") && !j.at("max_patch_length").is_null()
                           ? get_int(j, "max_patch_length", 0, true)
                           : 0;
  p.monotonicity = j.value("monotonicity", false);
  p.threshold_add = j.contains("patching_threshold_add") && !j.at("patching_threshold_add").is_null()
                        ? get_num(j, "patching_threshold_add", 0)
                        : 0;
  c.validate();
  return c;
}

json blt_to_hf_json(const ModelConfig& c) {
  const auto& p = c.patching;
  json enc = hf_stack_json(c.encoder, c.context), dec = hf_stack_json(c.decoder, c.context);
  for (json* part : {&enc, &dec}) {
    (*part)["vocab_size"] = 260;
    (*part)["cross_attn_k"] = c.cross_attn_k;
    (*part)["hidden_size_global"] = c.global.width;
  }
  enc["cross_attn_all_layers"] = c.encoder_cross_all_layers;
  dec["cross_attn_all_layers"] = c.decoder_cross_all_layers;
  json j{{"model_type", "blt"},
         {"architectures", {"BltForCausalLM"}},
         {"vocab_size", 260},
         {"max_position_embeddings", c.max_patches},
         {"patch_in_forward", c.has_patcher},
         {"patch_size", p.patch_size},
         {"patching_mode", p.mode},
         {"patching_threshold", p.threshold},
         {"max_patch_length", p.max_patch_length > 0 ? json(p.max_patch_length) : json(nullptr)},
         {"monotonicity", p.monotonicity},
         {"patching_threshold_add", p.threshold_add > 0 ? json(p.threshold_add) : json(nullptr)},
         {"cross_attn_k", c.cross_attn_k},
         {"encoder_hash_byte_group_size", c.hash_sizes},
         {"encoder_hash_byte_group_vocab", c.hash_vocab},
         {"encoder_hash_byte_group_nb_functions", c.hash_functions},
         {"tie_word_embeddings", false},
         {"initializer_range", c.init_std},
         {"bytelm_context", c.context},
         {"encoder_config", enc},
         {"decoder_config", dec},
         {"global_config", hf_stack_json(c.global, c.max_patches)}};
  if (c.has_patcher) {
    json pc = hf_stack_json(c.patcher, c.patcher_context);
    pc["vocab_size"] = 260;
    j["patcher_config"] = pc;
  }
  return j;
}

void validate_blt(const ModelConfig& c) {
  validate_stack(c.encoder, "encoder_config");
  validate_stack(c.decoder, "decoder_config");
  validate_stack(c.global, "global_config");
  if (c.has_patcher) validate_stack(c.patcher, "patcher_config");
  if (c.context < 1) throw Error("config: bytelm_context must be >= 1");
  if (c.encoder.width != c.decoder.width)
    throw Error("config: encoder and decoder hidden_size must match (the decoder reads the encoder's byte states)");
  if (c.cross_attn_k < 1 || c.cross_attn_k > 64) throw Error("config: cross_attn_k must be in [1, 64]");
  if (c.hash_functions < 1 || c.hash_functions > 64)
    throw Error("config: encoder_hash_byte_group_nb_functions must be in [1, 64]");
  if (c.hash_sizes.empty()) throw Error("config: encoder_hash_byte_group_size must not be empty");
  if (c.hash_vocab < 1 || c.hash_vocab > (int64_t(1) << 24))
    throw Error("config: encoder_hash_byte_group_vocab must be in [1, 2^24]");
  if (c.hash_sizes.size() > 16) throw Error("config: encoder_hash_byte_group_size holds at most 16 n-gram sizes");
  if (c.context > (int64_t(1) << 26)) throw Error("config: bytelm_context must be in [1, 2^26]");
  for (int64_t n : c.hash_sizes)
    if (n < 1 || n > 64) throw Error("config: hash n-gram sizes must be in [1, 64]");
  const auto& p = c.patching;
  if (p.mode != "entropy" && p.mode != "static" && p.mode != "space" && p.mode != "byte")
    throw Error("config: patching_mode '" + p.mode + "' (expected entropy, static, space or byte)");
  if (p.mode == "entropy" && !c.has_patcher)
    throw Error("config: patching_mode entropy needs a patcher (entropy model); none is configured");
  if (!std::isfinite(p.threshold)) throw Error("config: patching_threshold must be finite");
  if (p.patch_size < 1) throw Error("config: patch_size must be >= 1");
  if (p.max_patch_length < 0) throw Error("config: max_patch_length must be >= 1 or null");
}

}  // namespace bytelm
