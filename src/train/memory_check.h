// memory_check.h — before the first step: will batch x context x model fit in this machine's memory?
// A rough lower bound (parameters, gradients, AdamW moments, the activations a pre-norm block keeps for
// backward, the logits), compared with the memory this process may use. Torch-free.
#pragma once
#include <cstdint>

namespace bytelm {

// What the estimate needs to know of a model (from LanguageModelImpl: activation_floats_per_byte(),
// config().context, num_params()).
struct TrainingFootprint {
  double activation_floats_per_byte = 0;  // floats kept for backward per byte of a window
  int64_t context = 0;                    // bytes (or tokens) per window
  int64_t params = 0;
};

// Physical memory, capped by the address-space limit (ulimit -v) and the cgroup's memory.max; 0 if unknown.
int64_t usable_memory_bytes();

// Estimated bytes one training step needs (a lower bound: attention scores and allocator slack not counted).
int64_t estimate_training_bytes(const TrainingFootprint& footprint, int64_t batch);

// Throws Error (exit 2, naming --batch) if the estimate exceeds the usable memory (CPU training only).
void check_training_memory(const TrainingFootprint& footprint, int64_t batch);

}  // namespace bytelm
