// config.cpp — JSON <-> ModelConfig, preset lookup and validation (BLT's Hugging Face layout: config_blt.cpp).
#include "model/config.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "model/config_json.h"
#include "util/error.h"

namespace bytelm {

using nlohmann::json;

int64_t StackConfig::hidden() const {
  if (mlp_hidden > 0) return mlp_hidden;
  int64_t h = (8 * width) / 3;
  return (h + 63) / 64 * 64;
}

// Shared with config_blt.cpp (config_json.h).
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

namespace {

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

}  // namespace

json stack_to_json(const StackConfig& s) {
  return json{{"layers", s.layers},
              {"width", s.width},
              {"heads", s.heads},
              {"mlp_hidden", s.mlp_hidden},
              {"rope_theta", s.rope_theta}};
}

void validate_stack(const StackConfig& s, const std::string& name) {
  if (s.layers < 1 || s.layers > 1024) throw Error("config: " + name + ".layers must be in [1, 1024]");
  if (s.width < 1 || s.width > 65536) throw Error("config: " + name + ".width must be in [1, 65536]");
  if (s.heads < 1) throw Error("config: " + name + ".heads must be >= 1");
  if (s.width % s.heads != 0)
    throw Error("config: " + name + ".heads (" + std::to_string(s.heads) + ") does not divide " + name + ".width (" +
                std::to_string(s.width) + ")");
  if (s.rope_theta != 0 && (s.width / s.heads) % 2 != 0)
    throw Error("config: " + name + " head dim must be even for rotary positions");
  if (s.rope_theta < 0) throw Error("config: " + name + ".rope_theta must be >= 0");
  if (s.mlp_hidden < 0 || s.mlp_hidden > 64 * s.width)
    throw Error("config: " + name + ".mlp_hidden must be in [0, 64 x width] (0: 8/3 x width)");
}

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
      throw Error("config: the width above " + name + " (" + std::to_string(above_width) + ") must split into " +
                  std::to_string(above / l.patch_size) + " slices");
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

double stack_matrix_params(const StackConfig& s) {
  const double w = double(s.width);
  return double(s.layers) * (4 * w * w + 3 * w * double(s.hidden()));
}

double ModelConfig::min_params() const {
  if (model == "hnet") return hnet_min_params(*this);
  if (model == "blt") {
    const double tables = double(hash_functions) * double(hash_sizes.size());
    return stack_matrix_params(encoder) + stack_matrix_params(decoder) + stack_matrix_params(global) +
           (has_patcher ? stack_matrix_params(patcher) : 0) + tables * double(hash_vocab) * double(encoder.width);
  }
  if (model == "megabyte") {
    double n = stack_matrix_params(global) + stack_matrix_params(local) +
               double(context) * double(global_byte_width());  // global position embeddings (T, D_G)
    for (const auto& l : levels) n += stack_matrix_params(l.stack);
    return n;
  }
  // transformer, entropy, bpe: one stack and its input embeddings.
  const double vocab = model == "bpe" ? double(vocab_size) : 256.0;
  return stack_matrix_params(global) + vocab * double(global.width);
}

void ModelConfig::validate() const {
  if (model != "transformer" && model != "megabyte" && model != "entropy" && model != "blt" && model != "bpe" &&
      model != "hnet")
    throw Error("config: unknown model '" + model + "' (expected transformer, megabyte, entropy, blt, bpe or hnet)");
  if (model == "bpe" && (vocab_size < 300 || vocab_size > 1000000))
    throw Error("config: vocab_size must be in [300, 1000000] (259 pieces are bytes and specials)");
  if (context < 1 || context > (int64_t(1) << 26)) throw Error("config: context must be in [1, 2^26]");
  if (init_std <= 0 || init_std > 1) throw Error("config: init_std must be in (0, 1]");
  if (norm_eps <= 0 || norm_eps > 1) throw Error("config: norm_eps must be in (0, 1]");
  if (model == "blt") return validate_blt(*this);
  if (model == "hnet") return validate_hnet(*this);
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

ModelConfig ModelConfig::from_json(const json& j) {
  if (!j.is_object()) throw Error("config: expected a JSON object");
  if (j.contains("encoder_config") || (j.contains("model_type") && j.at("model_type") == "blt"))
    return blt_from_hf_json(j);
  if (!j.contains("model") || !j.at("model").is_string()) throw Error("config: missing string key 'model'");
  ModelConfig c;
  c.model = j.at("model").get<std::string>();
  if (c.model == "hnet") return hnet_from_json(j);
  if (c.model == "transformer" || c.model == "entropy" || c.model == "bpe") {
    if (c.model == "bpe")
      check_keys(j,
                 {"model", "context", "vocab_size", "layers", "width", "heads", "mlp_hidden", "rope_theta", "init_std",
                  "norm_eps"},
                 "");
    else
      check_keys(
          j, {"model", "context", "layers", "width", "heads", "mlp_hidden", "rope_theta", "init_std", "norm_eps"}, "");
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
    check_keys(j,
               {"model", "context", "patch_size", "global", "local", "init_std", "norm_eps", "conv_kernels",
                "cross_patch", "levels"},
               "");
    c.context = get_int(j, "context", 0, true);
    c.patch_size = get_int(j, "patch_size", 0, true);
    if (!j.contains("global") || !j.contains("local"))
      throw Error("config: megabyte needs 'global' and 'local' objects");
    // Faithful to the paper: the global model gets learned absolute positions, no rotary; the local
    // model has rotary positions by default (the paper's Figure 2 shows none; see docs/models.md).
    c.global = stack_from_json(j.at("global"), "global", 0.0);
    c.local = stack_from_json(j.at("local"), "local", 10000.0);
    megabyte_variants_from_json(j, c);
  } else {
    throw Error("config: unknown model '" + c.model + "' (expected transformer, megabyte, entropy, bpe, hnet or blt)");
  }
  c.init_std = get_num(j, "init_std", c.init_std);
  c.norm_eps = get_num(j, "norm_eps", c.norm_eps);
  c.validate();
  return c;
}

json ModelConfig::to_json() const {
  if (model == "blt") return blt_to_hf_json(*this);
  if (model == "hnet") return hnet_to_json(*this);
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

}  // namespace bytelm
