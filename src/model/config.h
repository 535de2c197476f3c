// config.h — model configurations (JSON), shared by every model, with validation.
// A config file is a flat JSON object with a "model" key; unknown keys and inconsistent values are errors.
// Letters used in shape comments across the project: B batch, T bytes (context), P patch size,
// K = T/P patches, D width, H heads, V vocabulary (256 bytes; +1 input-only start id for the Transformer).
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace bytelm {

// One stack of pre-norm transformer blocks (also used as a part of MEGABYTE).
struct StackConfig {
  int64_t layers = 0;
  int64_t width = 0;      // D
  int64_t heads = 0;      // H; head dim = D / H
  int64_t mlp_hidden = 0; // SwiGLU hidden size; 0 = round_up(8 D / 3, 64)
  double rope_theta = 0;  // 0 disables rotary positions
  int64_t hidden() const; // resolved SwiGLU hidden size
};

struct ModelConfig {
  std::string model;       // "transformer" | "megabyte"
  int64_t context = 0;     // T, bytes per sequence
  int64_t patch_size = 1;  // P (MEGABYTE); 1 for the Transformer
  StackConfig global;      // the Transformer's only stack; MEGABYTE's global model (width = P * D_G)
  StackConfig local;       // MEGABYTE's local model (width D_L)
  double init_std = 0.02;  // normal init of linear and embedding weights
  double norm_eps = 1e-5;

  int64_t global_byte_width() const { return global.width / patch_size; }  // D_G

  static ModelConfig from_json(const nlohmann::json& j);  // validates; throws Error
  nlohmann::json to_json() const;
  void validate() const;                                   // throws Error
};

// Reads a config file, or a preset from configs/ by name ("tiny", "demo", "s", "cpu" resolve to
// configs/<mb|tf>_<name>.json for the given model; a full preset name like "mb_s" also works).
// If `model` is non-empty it must match the config's "model". Throws Error.
ModelConfig load_config(const std::string& path_or_preset, const std::string& model);

}  // namespace bytelm
