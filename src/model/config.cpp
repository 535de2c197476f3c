// config.cpp — JSON <-> ModelConfig, preset lookup and validation.
#include "model/config.h"

#include <cmath>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "util/error.h"

namespace bytelm {

using nlohmann::json;

int64_t StackConfig::hidden() const {
  if (mlp_hidden > 0) return mlp_hidden;
  int64_t h = (8 * width) / 3;
  return (h + 63) / 64 * 64;
}

namespace {

int64_t get_int(const json& j, const char* key, int64_t fallback, bool required) {
  if (!j.contains(key)) {
    if (required) throw Error(std::string("config: missing key '") + key + "'");
    return fallback;
  }
  const json& v = j.at(key);
  if (!v.is_number_integer()) throw Error(std::string("config: '") + key + "' must be an integer");
  return v.get<int64_t>();
}

double get_num(const json& j, const char* key, double fallback) {
  if (!j.contains(key)) return fallback;
  const json& v = j.at(key);
  if (!v.is_number()) throw Error(std::string("config: '") + key + "' must be a number");
  return v.get<double>();
}

void check_keys(const json& j, const std::set<std::string>& allowed, const std::string& where) {
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!allowed.count(it.key())) throw Error("config: unknown key '" + it.key() + "'" + where);
}

StackConfig stack_from_json(const json& j, const std::string& name, double default_theta) {
  if (!j.is_object()) throw Error("config: '" + name + "' must be an object");
  check_keys(j, {"layers", "width", "heads", "mlp_hidden", "rope_theta"}, " in '" + name + "'");
  StackConfig s;
  s.layers = get_int(j, "layers", 0, true);
  s.width = get_int(j, "width", 0, true);
  s.heads = get_int(j, "heads", 0, true);
  s.mlp_hidden = get_int(j, "mlp_hidden", 0, false);
  s.rope_theta = get_num(j, "rope_theta", default_theta);
  return s;
}

// MEGABYTE's variant keys: conv_kernels [k...], cross_patch r, levels [{patch_size, layers, width, heads, ...}].
void megabyte_variants_from_json(const json& j, ModelConfig& c) {
  if (j.contains("conv_kernels")) {
    const json& k = j.at("conv_kernels");
    if (!k.is_array()) throw Error("config: 'conv_kernels' must be a list of kernel sizes");
    for (const auto& v : k) {
      if (!v.is_number_integer()) throw Error("config: 'conv_kernels' must hold integers");
      c.conv_kernels.push_back(v.get<int64_t>());
    }
  }
  c.cross_patch = get_int(j, "cross_patch", 0, false);
  if (j.contains("levels")) {
    const json& levels = j.at("levels");
    if (!levels.is_array()) throw Error("config: 'levels' must be a list of level objects");
    for (size_t i = 0; i < levels.size(); ++i) {
      const std::string name = "levels[" + std::to_string(i) + "]";
      if (!levels[i].is_object()) throw Error("config: '" + name + "' must be an object");
      LevelConfig l;
      l.patch_size = get_int(levels[i], "patch_size", 0, true);
      json stack = levels[i];
      stack.erase("patch_size");
      l.stack = stack_from_json(stack, name, 10000.0);
      c.levels.push_back(l);
    }
  }
}

json stack_to_json(const StackConfig& s) {
  return json{{"layers", s.layers}, {"width", s.width}, {"heads", s.heads},
              {"mlp_hidden", s.mlp_hidden}, {"rope_theta", s.rope_theta}};
}

void validate_stack(const StackConfig& s, const std::string& name) {
  if (s.layers < 1 || s.layers > 1024) throw Error("config: " + name + ".layers must be in [1, 1024]");
  if (s.width < 1 || s.width > 65536) throw Error("config: " + name + ".width must be in [1, 65536]");
  if (s.heads < 1) throw Error("config: " + name + ".heads must be >= 1");
  if (s.width % s.heads != 0)
    throw Error("config: " + name + ".heads (" + std::to_string(s.heads) + ") does not divide " + name +
                ".width (" + std::to_string(s.width) + ")");
  if (s.rope_theta != 0 && (s.width / s.heads) % 2 != 0)
    throw Error("config: " + name + " head dim must be even for rotary positions");
  if (s.rope_theta < 0) throw Error("config: " + name + ".rope_theta must be >= 0");
  if (s.mlp_hidden < 0) throw Error("config: " + name + ".mlp_hidden must be >= 0");
}

}  // namespace

void validate_blt(const ModelConfig& c);

namespace {
void validate_megabyte_variants(const ModelConfig& c) {
  if (c.conv_kernels.size() > 8) throw Error("config: conv_kernels holds at most 8 kernel sizes");
  for (int64_t k : c.conv_kernels)
    if (k < 1 || k > 64) throw Error("config: conv_kernels sizes must be in [1, 64]");
  int64_t above = c.patch_size, above_width = c.global.width;
  for (size_t i = 0; i < c.levels.size(); ++i) {
    const auto& l = c.levels[i];
    const std::string name = "levels[" + std::to_string(i) + "]";
    validate_stack(l.stack, name);
    if (l.patch_size < 2 || above % l.patch_size != 0 || l.patch_size >= above)
      throw Error("config: " + name + ".patch_size (" + std::to_string(l.patch_size) +
                  ") must be > 1 and a proper divisor of the level above's (" + std::to_string(above) + ")");
    if (l.stack.width % l.patch_size != 0)
      throw Error("config: " + name + ".width must be a multiple of its patch_size (it is patch_size * byte width)");
    if (above_width % (above / l.patch_size) != 0)
      throw Error("config: the width above " + name + " (" + std::to_string(above_width) +
                  ") must split into " + std::to_string(above / l.patch_size) + " slices");
    above = l.patch_size;
    above_width = l.stack.width;
  }
  if (!c.levels.empty() && above_width % above != 0)
    throw Error("config: the last level's width must be a multiple of its patch_size");
  if (c.cross_patch < 0 || c.cross_patch > c.local_patch_size())
    throw Error("config: cross_patch must be in [0, " + std::to_string(c.local_patch_size()) +
                "] (keys/values of the previous patch)");
}
}  // namespace

void ModelConfig::validate() const {
  if (model != "transformer" && model != "megabyte" && model != "entropy" && model != "blt" && model != "bpe")
    throw Error("config: unknown model '" + model + "' (expected transformer, megabyte, entropy, blt or bpe)");
  if (model == "bpe" && (vocab_size < 300 || vocab_size > 1000000))
    throw Error("config: vocab_size must be in [300, 1000000] (259 pieces are bytes and specials)");
  if (context < 1 || context > (int64_t(1) << 26)) throw Error("config: context must be in [1, 2^26]");
  if (init_std <= 0 || init_std > 1) throw Error("config: init_std must be in (0, 1]");
  if (norm_eps <= 0 || norm_eps > 1) throw Error("config: norm_eps must be in (0, 1]");
  if (model == "blt") return validate_blt(*this);
  validate_stack(global, model == "megabyte" ? "global" : "model");
  if (model == "megabyte") {
    if (patch_size < 1) throw Error("config: patch_size must be >= 1");
    if (context % patch_size != 0)
      throw Error("config: context (" + std::to_string(context) + ") is not a multiple of patch_size (" +
                  std::to_string(patch_size) + ")");
    if (global.width % patch_size != 0)
      throw Error("config: global.width (" + std::to_string(global.width) +
                  ") must be a multiple of patch_size (it is patch_size * D_G)");
    validate_stack(local, "local");
    validate_megabyte_variants(*this);
  }
}

ModelConfig blt_from_hf_json(const json& j);

ModelConfig ModelConfig::from_json(const json& j) {
  if (!j.is_object()) throw Error("config: expected a JSON object");
  if (j.contains("encoder_config") || (j.contains("model_type") && j.at("model_type") == "blt")) return blt_from_hf_json(j);
  if (!j.contains("model") || !j.at("model").is_string()) throw Error("config: missing string key 'model'");
  ModelConfig c;
  c.model = j.at("model").get<std::string>();
  if (c.model == "transformer" || c.model == "entropy" || c.model == "bpe") {
    if (c.model == "bpe")
      check_keys(j, {"model", "context", "vocab_size", "layers", "width", "heads", "mlp_hidden", "rope_theta",
                     "init_std", "norm_eps"}, "");
    else
      check_keys(j, {"model", "context", "layers", "width", "heads", "mlp_hidden", "rope_theta", "init_std",
                     "norm_eps"}, "");
    c.context = get_int(j, "context", 0, true);
    if (c.model == "bpe") c.vocab_size = get_int(j, "vocab_size", 0, true);
    c.patch_size = 1;
    json stack;
    for (const char* k : {"layers", "width", "heads", "mlp_hidden", "rope_theta"})
      if (j.contains(k)) stack[k] = j.at(k);
    c.global = stack_from_json(stack, "model", 10000.0);
    // The entropy model is the BLT patcher: its rotary pairs are interleaved as in HF's BltPatcher.
    c.global.rope_interleaved = c.model == "entropy";
  } else if (c.model == "megabyte") {
    check_keys(j, {"model", "context", "patch_size", "global", "local", "init_std", "norm_eps", "conv_kernels",
                   "cross_patch", "levels"}, "");
    c.context = get_int(j, "context", 0, true);
    c.patch_size = get_int(j, "patch_size", 0, true);
    if (!j.contains("global") || !j.contains("local"))
      throw Error("config: megabyte needs 'global' and 'local' objects");
    // Faithful to the paper: the global model gets learned absolute positions, no rotary; the local
    // model has rotary positions by default (the paper's Figure 2 shows none; see README).
    c.global = stack_from_json(j.at("global"), "global", 0.0);
    c.local = stack_from_json(j.at("local"), "local", 10000.0);
    megabyte_variants_from_json(j, c);
  } else {
    throw Error("config: unknown model '" + c.model + "' (expected transformer or megabyte)");
  }
  c.init_std = get_num(j, "init_std", c.init_std);
  c.norm_eps = get_num(j, "norm_eps", c.norm_eps);
  c.validate();
  return c;
}

json blt_to_hf_json(const ModelConfig& c);

json ModelConfig::to_json() const {
  if (model == "blt") return blt_to_hf_json(*this);
  json j{{"model", model}, {"context", context}, {"init_std", init_std}, {"norm_eps", norm_eps}};
  if (model == "bpe") j["vocab_size"] = vocab_size;
  if (model == "transformer" || model == "entropy" || model == "bpe") {
    json s = stack_to_json(global);
    for (auto it = s.begin(); it != s.end(); ++it) j[it.key()] = it.value();
  } else {
    j["patch_size"] = patch_size;
    j["global"] = stack_to_json(global);
    j["local"] = stack_to_json(local);
    if (megabyte_variant()) {  // recorded when used; a config without them is the paper's main text
      j["conv_kernels"] = conv_kernels;
      j["cross_patch"] = cross_patch;
      json levels_json = json::array();
      for (const auto& l : levels) {
        json lj = stack_to_json(l.stack);
        lj["patch_size"] = l.patch_size;
        levels_json.push_back(lj);
      }
      j["levels"] = levels_json;
    }
  }
  return j;
}

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
    throw Error("config: " + name + ": grouped-query attention (num_key_value_heads != num_attention_heads) is not supported");
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
  return json{{"hidden_size", s.width}, {"num_attention_heads", s.heads}, {"num_key_value_heads", s.heads},
              {"num_hidden_layers", s.layers}, {"intermediate_size", s.hidden()}, {"rms_norm_eps", s.norm_eps},
              {"rope_parameters", {{"rope_theta", s.rope_theta}, {"rope_type", "default"}}},
              {"max_position_embeddings", max_pos}, {"hidden_act", "silu"}, {"dropout", 0.0}};
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
  c.has_patcher = j.value("patch_in_forward", true) && j.contains("patcher_config") && j.at("patcher_config").is_object();
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
  p.threshold = j.contains("patching_threshold") && !j.at("patching_threshold").is_null() ? get_num(j, "patching_threshold", p.threshold) : p.threshold;
  p.patch_size = get_int(j, "patch_size", 4, false);
  p.max_patch_length = j.contains("max_patch_length") && !j.at("max_patch_length").is_null() ? get_int(j, "max_patch_length", 0, true) : 0;
  p.monotonicity = j.value("monotonicity", false);
  p.threshold_add = j.contains("patching_threshold_add") && !j.at("patching_threshold_add").is_null() ? get_num(j, "patching_threshold_add", 0) : 0;
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
  json j{{"model_type", "blt"}, {"architectures", {"BltForCausalLM"}}, {"vocab_size", 260},
         {"max_position_embeddings", c.max_patches}, {"patch_in_forward", c.has_patcher},
         {"patch_size", p.patch_size}, {"patching_mode", p.mode}, {"patching_threshold", p.threshold},
         {"max_patch_length", p.max_patch_length > 0 ? json(p.max_patch_length) : json(nullptr)},
         {"monotonicity", p.monotonicity},
         {"patching_threshold_add", p.threshold_add > 0 ? json(p.threshold_add) : json(nullptr)},
         {"cross_attn_k", c.cross_attn_k}, {"encoder_hash_byte_group_size", c.hash_sizes},
         {"encoder_hash_byte_group_vocab", c.hash_vocab}, {"encoder_hash_byte_group_nb_functions", c.hash_functions},
         {"tie_word_embeddings", false}, {"initializer_range", c.init_std}, {"bytelm_context", c.context},
         {"encoder_config", enc}, {"decoder_config", dec}, {"global_config", hf_stack_json(c.global, c.max_patches)}};
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
  if (c.hash_functions < 1 || c.hash_functions > 64) throw Error("config: encoder_hash_byte_group_nb_functions must be in [1, 64]");
  if (c.hash_sizes.empty()) throw Error("config: encoder_hash_byte_group_size must not be empty");
  if (c.hash_vocab < 1) throw Error("config: encoder_hash_byte_group_vocab must be >= 1");
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
