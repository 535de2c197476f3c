// config.cpp — JSON <-> ModelConfig, preset lookup and validation.
#include "model/config.h"

#include <filesystem>
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

void ModelConfig::validate() const {
  if (model != "transformer" && model != "megabyte")
    throw Error("config: unknown model '" + model + "' (expected transformer or megabyte)");
  if (context < 1 || context > (int64_t(1) << 26)) throw Error("config: context must be in [1, 2^26]");
  if (init_std <= 0 || init_std > 1) throw Error("config: init_std must be in (0, 1]");
  if (norm_eps <= 0 || norm_eps > 1) throw Error("config: norm_eps must be in (0, 1]");
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
  }
}

ModelConfig ModelConfig::from_json(const json& j) {
  if (!j.is_object()) throw Error("config: expected a JSON object");
  if (!j.contains("model") || !j.at("model").is_string()) throw Error("config: missing string key 'model'");
  ModelConfig c;
  c.model = j.at("model").get<std::string>();
  if (c.model == "transformer") {
    check_keys(j, {"model", "context", "layers", "width", "heads", "mlp_hidden", "rope_theta", "init_std",
                   "norm_eps"}, "");
    c.context = get_int(j, "context", 0, true);
    c.patch_size = 1;
    json stack;
    for (const char* k : {"layers", "width", "heads", "mlp_hidden", "rope_theta"})
      if (j.contains(k)) stack[k] = j.at(k);
    c.global = stack_from_json(stack, "model", 10000.0);
  } else if (c.model == "megabyte") {
    check_keys(j, {"model", "context", "patch_size", "global", "local", "init_std", "norm_eps"}, "");
    c.context = get_int(j, "context", 0, true);
    c.patch_size = get_int(j, "patch_size", 0, true);
    if (!j.contains("global") || !j.contains("local"))
      throw Error("config: megabyte needs 'global' and 'local' objects");
    // Faithful to the paper: the global model gets learned absolute positions, no rotary; the local
    // model has rotary positions by default (the paper's Figure 2 shows none; see README).
    c.global = stack_from_json(j.at("global"), "global", 0.0);
    c.local = stack_from_json(j.at("local"), "local", 10000.0);
  } else {
    throw Error("config: unknown model '" + c.model + "' (expected transformer or megabyte)");
  }
  c.init_std = get_num(j, "init_std", c.init_std);
  c.norm_eps = get_num(j, "norm_eps", c.norm_eps);
  c.validate();
  return c;
}

json ModelConfig::to_json() const {
  json j{{"model", model}, {"context", context}, {"init_std", init_std}, {"norm_eps", norm_eps}};
  if (model == "transformer") {
    json s = stack_to_json(global);
    for (auto it = s.begin(); it != s.end(); ++it) j[it.key()] = it.value();
  } else {
    j["patch_size"] = patch_size;
    j["global"] = stack_to_json(global);
    j["local"] = stack_to_json(local);
  }
  return j;
}

ModelConfig load_config(const std::string& path_or_preset, const std::string& model) {
  namespace fs = std::filesystem;
  std::string path = path_or_preset;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec) && path.find('/') == std::string::npos &&
      path.find(".json") == std::string::npos) {
    const std::string dir = BYTELM_CONFIG_DIR;
    std::string prefix = model == "megabyte" ? "mb_" : model == "transformer" ? "tf_" : "";
    if (!prefix.empty() && fs::is_regular_file(dir + "/" + prefix + path + ".json", ec))
      path = dir + "/" + prefix + path + ".json";
    else if (fs::is_regular_file(dir + "/" + path + ".json", ec))
      path = dir + "/" + path + ".json";
    else
      throw Error("config: '" + path_or_preset + "' is neither a file nor a preset in " + dir);
  }
  json j;
  try {
    j = json::parse(read_file(path));
  } catch (const json::exception& e) {
    throw Error(path + ": invalid JSON (" + std::string(e.what()) + ")");
  }
  ModelConfig c;
  try {
    c = ModelConfig::from_json(j);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  if (!model.empty() && c.model != model)
    throw Error(path + ": config is for model '" + c.model + "', not '" + model + "'");
  return c;
}

}  // namespace bytelm
