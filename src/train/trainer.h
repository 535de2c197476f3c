// trainer.h — training loop: AdamW, warmup + cosine schedule, clipping, accumulation, validation,
// checkpoints (periodic, final, on Ctrl-C or SIGTERM), exact resume, JSONL metrics and a progress bar.
#pragma once
#include "train/train_options.h"

namespace bytelm {

// Runs training. Returns the process exit code (0 done, 130 / 143 stopped by SIGINT / SIGTERM after saving).
// Throws Error on bad input (exit 2) and on running out of memory (exit 1).
int run_train(const TrainOptions& opt);

}  // namespace bytelm
