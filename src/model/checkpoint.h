// checkpoint.h — checkpoint directories and torch <-> safetensors conversion.
// A checkpoint directory holds:
//   config.json            the model config (ModelConfig JSON)
//   model.safetensors      the weights, F32, named as named_parameters() (see docs/models.md for the list)
//   optimizer.safetensors  AdamW moments "exp_avg.<name>", "exp_avg_sq.<name>" (training only)
//   trainer.json           step, options and data of the run (training only)
// Every file is written atomically (temporary file + rename).
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "io/safetensors.h"
#include "model/model.h"

namespace bytelm {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Writes tensors (any device; converted to contiguous CPU, dtype kept: F32, BF16, F16, I64) atomically.
void save_tensors(const std::string& path, const NamedTensors& tensors,
                  const std::map<std::string, std::string>& metadata = {});

// Reads `path` and copies into each target tensor in place, strictly: every name must be present with
// the target's shape (F32/F16/BF16 are converted to the target dtype), and the file may hold no other
// tensors. Returns the file's metadata. Throws Error naming the file and the problem.
// Tensors holding NaN or infinite values are refused (naming the tensor and the count).
std::map<std::string, std::string> load_tensors_into(const std::string& path, const NamedTensors& targets);
std::map<std::string, std::string> load_tensors_from(const SafetensorsReader& reader, const NamedTensors& targets);

// Before a model is built from cfg: refuses (naming config_path) a config whose model differs from the one the
// weights' metadata names, or that implies more parameters (ModelConfig::min_params) than the file holds.
void check_weights_fit(const ModelConfig& cfg, const SafetensorsReader& weights, const std::string& config_path);

NamedTensors named_parameters_of(const torch::nn::Module& module);
// The parameters that require gradients: frozen ones (BLT's entropy model) are saved but not optimised.
NamedTensors trainable_parameters_of(const torch::nn::Module& module);

// config.json + model.safetensors into dir (created if needed).
void save_model(const std::string& dir, const LanguageModelImpl& model,
                const std::map<std::string, std::string>& metadata = {});
// Reads config.json, builds the model and loads model.safetensors. Throws Error.
LanguageModel load_model(const std::string& dir);
ModelConfig load_checkpoint_config(const std::string& dir);

// Opening a checkpoint for use, the one way every tool does it: checks the device, sets the CPU threads,
// loads the model onto the device in eval mode. Throws Error.
LanguageModel load_for_inference(const std::string& ckpt, const std::string& device, int threads);

}  // namespace bytelm
