// trainer.h — training loop: AdamW, warmup + cosine schedule, clipping, accumulation, validation,
// checkpoints (periodic, final, on Ctrl-C), exact resume, JSONL metrics and a progress bar.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace bytelm {

struct TrainOptions {
  std::string model;                  // transformer | megabyte
  std::string config;                 // file or preset name
  std::vector<std::string> data;      // files or directories
  std::string out;                    // checkpoint directory
  std::string entropy_model;          // BLT: entropy-model checkpoint whose weights become the patcher
  int64_t steps = 1000;               // optimizer steps in the whole run
  int64_t batch = 8;                  // sequences per micro-batch
  int64_t accum = 1;                  // micro-batches per step
  double lr = 1e-3;                   // peak learning rate
  double min_lr_ratio = 0.1;          // cosine decays to lr * min_lr_ratio
  int64_t warmup = 100;               // linear warmup steps
  double weight_decay = 0.1;          // not applied to norms, embeddings, pads
  double beta1 = 0.9, beta2 = 0.95, adam_eps = 1e-8;
  double clip = 1.0;                  // global grad-norm clip (0 = off)
  uint64_t seed = 1234;               // init and data order
  double val_fraction = 0.05;         // tail of each file held out
  int64_t eval_every = 200;           // validation bpb every N steps (0 = only at the end)
  int64_t eval_batches = 4;           // validation batches
  int64_t ckpt_every = 500;           // checkpoint every N steps (0 = only at the end)
  int64_t log_every = 10;             // metrics line every N steps
  int64_t exit_after = 0;             // stop after this step as if interrupted (0 = off)
  bool resume = false;
  std::string device = "cpu";
  std::string precision = "auto";     // fp32 | bf16 (autocast) | auto = bf16 on CUDA, fp32 on CPU
  int threads = 0;
  double peak_flops = 0;              // for MFU; 0 = measure at start
};

// Runs training. Returns the process exit code (0 done, 130 interrupted after saving). Throws Error on bad input.
int run_train(const TrainOptions& opt);

}  // namespace bytelm
