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

#include "model/model.h"

namespace bytelm {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Writes tensors (any device; converted to contiguous CPU, dtype kept: F32, BF16, F16, I64) atomically.
void save_tensors(const std::string& path, const NamedTensors& tensors,
                  const std::map<std::string, std::string>& metadata = {});

// Reads `path` and copies into each target tensor in place, strictly: every name must be present with
// the target's shape (F32/F16/BF16 are converted to the target dtype), and the file may hold no other
// tensors. Returns the file's metadata. Throws Error naming the file and the problem.
std::map<std::string, std::string> load_tensors_into(const std::string& path, const NamedTensors& targets);

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
