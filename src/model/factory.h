// factory.h — builds the model a config names. The one file that knows every architecture; the interface
// (model.h) and the architectures sit below it, checkpoints and the trainer above it.
#pragma once
#include "model/model.h"

namespace bytelm {

// A model of cfg.model ("transformer", "megabyte", "entropy", "blt", "bpe") with freshly initialised
// weights. Validates the config first (Error naming the key).
LanguageModel make_model(const ModelConfig& cfg);

}  // namespace bytelm
