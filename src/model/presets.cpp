// presets.cpp — configs by name: preset lookup (configs/<prefix>_<name>.json), the preset list with the
// parameter counts recorded in configs/presets.tsv, and a config's shape in words (see config.h). Torch-free.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/strict_json.h"
#include "model/config.h"
#include "util/error.h"
#include "util/paths.h"

namespace bytelm {

using nlohmann::json;

namespace {
std::string unknown_preset(const std::string& name, const std::string& model) {
  std::string names;
  for (const auto& p : list_presets()) names += (names.empty() ? "" : ", ") + p.name;
  std::string hint = model.empty() && name.find('_') == std::string::npos
                         ? " (a short name like 'demo' needs --model; or give the full name)"
                         : "";
  return "config: '" + name + "' is neither a file nor a preset" + hint + "; presets: " + names +
         " (bytelm info --presets lists them)";
}
}  // namespace

std::string presets_tsv_path() { return data_dir("configs") + "/presets.tsv"; }

std::vector<PresetInfo> list_presets() {
  namespace fs = std::filesystem;
  std::map<std::string, int64_t> params;
  std::ifstream tsv(presets_tsv_path());
  std::string name;
  int64_t count = 0;
  while (tsv >> name >> count) params[name] = count;
  std::vector<PresetInfo> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(data_dir("configs"), ec)) {
    if (entry.path().extension() != ".json") continue;
    PresetInfo p;
    p.name = entry.path().stem().string();
    p.path = entry.path().string();
    try {
      ModelConfig c = ModelConfig::from_json(json::parse(read_file(entry.path().string())));
      p.model = c.model;
      p.context = c.context;
    } catch (const std::exception&) {
      continue;  // not a config; load_config reports it if asked for
    }
    if (params.count(p.name)) p.params = params[p.name];
    out.push_back(p);
  }
  std::sort(out.begin(), out.end(), [](const PresetInfo& a, const PresetInfo& b) { return a.name < b.name; });
  return out;
}

std::string describe_shape(const ModelConfig& c) {
  auto stack = [](const StackConfig& s) { return std::to_string(s.layers) + " x " + std::to_string(s.width); };
  if (c.model == "megabyte") {
    std::string s = "P=" + std::to_string(c.patch_size) + ", global " + stack(c.global) +
                    " (D_G=" + std::to_string(c.global_byte_width()) + ")";
    for (const auto& l : c.levels) s += ", level P=" + std::to_string(l.patch_size) + " " + stack(l.stack);
    s += ", local " + stack(c.local);
    if (!c.conv_kernels.empty()) {
      s += ", conv";
      for (size_t i = 0; i < c.conv_kernels.size(); ++i) s += (i ? "-" : " ") + std::to_string(c.conv_kernels[i]);
    }
    if (c.cross_patch > 0) s += ", cross-patch r=" + std::to_string(c.cross_patch);
    return s;
  }
  if (c.model == "blt") {
    std::string s = "enc " + stack(c.encoder) + ", global " + stack(c.global) + ", dec " + stack(c.decoder) +
                    ", k=" + std::to_string(c.cross_attn_k);
    if (!c.hash_sizes.empty())
      s += ", n-grams " + std::to_string(c.hash_sizes.front()) + ".." + std::to_string(c.hash_sizes.back()) + " x " +
           std::to_string(c.hash_vocab);
    if (c.has_patcher) s += ", patcher " + stack(c.patcher);
    return s;
  }
  if (c.model == "bpe") return stack(c.global) + ", V=" + std::to_string(c.vocab_size);
  if (c.model == "hnet") {
    std::string enc, dec, targets;
    char n[32];
    for (const auto& st : c.stages) {
      enc += "enc " + stack(st.encoder) + ", ";
      dec = ", dec " + stack(st.decoder) + dec;
      std::snprintf(n, sizeof n, "%s%g", targets.empty() ? "" : "/", st.target_ratio);
      targets += n;
    }
    return enc + "main " + stack(c.global) + dec + ", N=" + targets;
  }
  return stack(c.global);
}

std::string presets_table() {
  std::string out = "Presets (--config NAME, or the short name tiny|demo|cpu|s with --model):\n";
  char line[160];
  std::snprintf(line, sizeof line, "  %-10s %-12s %8s %12s\n", "name", "model", "context", "parameters");
  out += line;
  for (const auto& p : list_presets()) {
    std::string params = p.params < 0 ? "?" : std::to_string(p.params);
    std::snprintf(line, sizeof line, "  %-10s %-12s %8lld %12s\n", p.name.c_str(), p.model.c_str(),
                  (long long)p.context, params.c_str());
    out += line;
  }
  return out;
}

ModelConfig load_config(const std::string& path_or_preset, const std::string& model) {
  namespace fs = std::filesystem;
  std::string path = path_or_preset;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec) && path.find('/') == std::string::npos &&
      path.find(".json") == std::string::npos) {
    const std::string dir = data_dir("configs");
    std::string prefix = model == "megabyte"      ? "mb_"
                         : model == "transformer" ? "tf_"
                         : model == "blt"         ? "blt_"
                         : model == "entropy"     ? "ent_"
                         : model == "bpe"         ? "bpe_"
                         : model == "hnet"        ? "hnet_"
                                                  : "";
    if (!prefix.empty() && fs::is_regular_file(dir + "/" + prefix + path + ".json", ec))
      path = dir + "/" + prefix + path + ".json";
    else if (fs::is_regular_file(dir + "/" + path + ".json", ec))
      path = dir + "/" + path + ".json";
    else
      throw Error(unknown_preset(path_or_preset, model));
  }
  const json j = read_strict_json(path);
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
