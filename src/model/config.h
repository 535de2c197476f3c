// config.h — model configurations (JSON), shared by every model, with validation.
// A config file is a flat JSON object with a "model" key; unknown keys and inconsistent values are errors.
// Letters used in shape comments across the project: B batch, T bytes (context), P patch size,
// K = T/P patches, D width, H heads, V vocabulary (256 bytes; +1 input-only start id for the Transformer).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace bytelm {

// One stack of pre-norm transformer blocks (also used as a part of MEGABYTE).
struct StackConfig {
  int64_t layers = 0;
  int64_t width = 0;              // D
  int64_t heads = 0;              // H; head dim = D / H
  int64_t mlp_hidden = 0;         // SwiGLU hidden size; 0 = round_up(8 D / 3, 64)
  double rope_theta = 0;          // 0 disables rotary positions
  bool rope_interleaved = false;  // rotate pairs (2i, 2i+1) (BLT / HF Blt) instead of (i, i + Dh/2)
  double norm_eps = 1e-5;         // RMSNorm epsilon of this stack (BLT parts carry their own)
  int64_t hidden() const;         // resolved SwiGLU hidden size
};

// How BLT cuts bytes into patches (see src/blt/patcher.h for the exact rules).
struct PatchingConfig {
  std::string mode = "entropy";          // entropy | static | space | byte
  double threshold = 1.335442066192627;  // entropy rule (nats); the released default
  bool monotonicity = false;             // approximate-monotonic rule: H[p-1] - H[p-2] > threshold
  double threshold_add = 0;              // if > 0: also require H[p-1] - H[p-2] > threshold_add (combined)
  int64_t patch_size = 4;                // static patches; also the target bytes per patch
  int64_t max_patch_length = 0;          // split longer patches (0 = no limit)
};

// One middle level of an N-level MEGABYTE (between the global and the local model): a transformer over
// units of `patch_size` bytes, run inside each unit of the level above (see src/model/megabyte_levels.h).
struct LevelConfig {
  int64_t patch_size = 0;  // bytes per unit of this level; divides the level above's, > 1
  StackConfig stack;       // width = patch_size * (byte embedding width of this level)
};

// One H-Net stage (outer first): an encoder before the routing module, a decoder after dechunking, both of
// width D_s (see src/model/hnet.h).
struct HnetStageConfig {
  StackConfig encoder, decoder;  // E^s and D^s, width D_s
  double target_ratio = 6;       // N_s: the ratio loss aims at one chunk per N_s positions of this stage
  double lr_multiplier = 1;      // λ_s: this stage's learning rate (and, for stage 0, embedding and head) x lr
};

struct ModelConfig {
  std::string model;       // "transformer" | "megabyte" | "entropy" | "blt" | "bpe" | "hnet"
  int64_t context = 0;     // T, bytes per sequence (bpe: tokens per sequence)
  int64_t vocab_size = 0;  // bpe only: V, the subword tokenizer's pieces (tokenizer.model in the checkpoint)
  int64_t patch_size = 1;  // P (MEGABYTE); 1 for the Transformer
  StackConfig global;      // Transformer / entropy model: the stack; MEGABYTE: global model (width P*D_G);
                           // BLT: the latent global transformer
  StackConfig local;       // MEGABYTE's local model (width D_L)
  // MEGABYTE's variants (paper section 2.3 and deeper hierarchies); the defaults are the paper's main text.
  std::vector<int64_t> conv_kernels;  // causal conv stack over the global byte embeddings (paper: 3, 5, 7); empty = off
  int64_t cross_patch = 0;          // r: each local layer also attends to the last r keys/values of the previous patch
  std::vector<LevelConfig> levels;  // middle levels, top to bottom (e.g. one of 8 bytes under 64-byte patches)

  // BLT only. The JSON form is the Hugging Face BltConfig layout (config.json of BltForCausalLM).
  StackConfig encoder, decoder, patcher;  // local encoder, local decoder, entropy model (patcher)
  int64_t cross_attn_k = 2;               // patch vectors per patch
  bool encoder_cross_all_layers = false, decoder_cross_all_layers = true;
  std::vector<int64_t> hash_sizes{3, 4, 5, 6, 7, 8};  // n-gram sizes of the hash embeddings
  int64_t hash_functions = 1;
  int64_t hash_vocab = 500002;     // buckets per (function, n) table
  int64_t max_patches = 4096;      // global max_position_embeddings
  int64_t patcher_context = 8192;  // entropy model max_position_embeddings
  bool has_patcher = true;         // an entropy model is part of the weights
  PatchingConfig patching;
  // H-Net only: its stages, outer first; the main network is `global`.
  std::vector<HnetStageConfig> stages;
  double ratio_loss_weight = 0.03;  // α: loss = next-byte loss + α Σ_s ratio loss of stage s
  double main_lr_multiplier = 1;    // λ of the main network

  double init_std = 0.02;  // normal init of linear and embedding weights
  double norm_eps = 1e-5;

  // A lower bound on the parameters of the model built from this config (its stacks' attention and MLP
  // matrices, its embedding tables), computed without building it: a checkpoint's loader compares it with the
  // weights file before allocating anything.
  double min_params() const;
  int64_t global_byte_width() const { return global.width / patch_size; }  // D_G
  // MEGABYTE: bytes per unit of the local model's group (the patch size it runs over): P, or the last level's.
  int64_t local_patch_size() const { return levels.empty() ? patch_size : levels.back().patch_size; }
  bool megabyte_variant() const { return !conv_kernels.empty() || cross_patch > 0 || !levels.empty(); }

  static ModelConfig from_json(const nlohmann::json& j);  // validates; throws Error (HF Blt layout for "blt")
  nlohmann::json to_json() const;
  void validate() const;  // throws Error
};

// Reads a config file, or a preset from configs/ by name ("tiny", "demo", "s", "cpu" resolve to
// configs/<mb|tf>_<name>.json for the given model; a full preset name like "mb_s" also works).
// If `model` is non-empty it must match the config's "model". Throws Error.
ModelConfig load_config(const std::string& path_or_preset, const std::string& model);

// The presets in configs/: name ("mb_demo"), model, context, and parameters as recorded in
// configs/presets.tsv (-1 if not recorded; test_presets checks the file against the models).
struct PresetInfo {
  std::string name, model, path;
  int64_t context = 0;
  int64_t params = -1;
};
std::vector<PresetInfo> list_presets();
// The shape in words: "4 x 768" (layers x width), MEGABYTE's and BLT's parts.
std::string describe_shape(const ModelConfig& c);
// The presets as aligned text lines (for --help and errors).
std::string presets_table();
// The file presets_table() reads the parameter counts from.
std::string presets_tsv_path();

}  // namespace bytelm
