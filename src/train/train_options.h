// train_options.h — the settings of a training run: defaults, range checks, the run record
// (trainer.json) and how --resume merges the command line with the stored run. Torch-free.
//
// A run's record holds every setting that decides what the run computes (model, config, data, batch,
// schedule, optimiser, seed, split, precision); --resume takes them from the record, so `--out DIR
// --resume` alone continues the run. Changing one of them on resume is refused (the docs promise that
// a resumed run reproduces an uninterrupted one bit for bit, docs/usage.md); --steps may extend the run, the
// reporting cadence (--eval-every, --eval-batches, --ckpt-every, --log-every) and --threads may change;
// all are recorded (a run resumed without --threads keeps its own, since threads may change the bits).
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "util/inference.h"

namespace bytelm {

// Training's settings; device, precision and threads are the shared inference settings (util/inference.h).
struct TrainOptions : InferenceSettings {
  std::string model;                   // transformer | megabyte | entropy | blt | bpe
  std::string config;                  // file or preset name ("" = the model's demo preset)
  std::vector<std::string> data;       // files or directories
  std::string out;                     // checkpoint directory
  std::string entropy_model;           // BLT: entropy-model checkpoint whose weights become the patcher
  double bytes_per_patch = 0;          // BLT: > 0 calibrates the entropy threshold on the training data
  std::string tokenizer;               // bpe: tokenizer directory or file ("" = train one on the training split)
  std::string tokenizer_type = "bpe";  // bpe: what to train when no --tokenizer: bpe | unigram
  int64_t steps = 1000;                // optimizer steps in the whole run
  int64_t batch = 8;                   // sequences per micro-batch
  int64_t accum = 1;                   // micro-batches per step
  double lr = 1e-3;                    // peak learning rate
  double min_lr_ratio = 0.1;           // cosine decays to lr * min_lr_ratio
  int64_t warmup = 100;                // linear warmup steps
  double weight_decay = 0.1;           // not applied to norms, embeddings, pads
  double beta1 = 0.9, beta2 = 0.95, adam_eps = 1e-8;
  double clip = 1.0;           // global grad-norm clip (0 = off)
  int64_t seed = 1234;         // init and data order
  double val_fraction = 0.05;  // tail of each file held out
  int64_t eval_every = 200;    // validation bpb every N steps (0 = only at the end)
  int64_t eval_batches = 4;    // validation batches
  int64_t ckpt_every = 500;    // checkpoint every N steps (0 = only at the end)
  int64_t log_every = 10;      // metrics line every N steps
  int64_t exit_after = 0;      // stop after this step as if interrupted (0 = off)
  bool resume = false;
  double peak_flops = 0;  // for MFU; 0 = measure at start
  // Data-parallel (src/distributed/): the launcher's environment decides the world size; --batch is per rank.
  double dist_timeout = 300;     // seconds a collective (or the rendezvous) may wait for a peer
  bool shard_optimizer = false;  // ZeRO-1: AdamW moments sharded across ranks
  // Options given on the command line, by name without dashes ("batch", "min-lr-ratio"); filled by the CLI.
  // On --resume only these may differ from the record.
  std::set<std::string> given;
};

// Range checks of every option; throws Error naming the flag. Does not need --data/--model on resume.
void check_train_options(const TrainOptions& o);

// The run record's settings (everything but out, resume, exit_after, device, peak_flops and the
// data-parallel launch: dist_timeout, shard_optimizer; the world size is recorded by the trainer).
nlohmann::json train_record(const TrainOptions& o);

// --resume: the stored record (trainer.json) merged with the command line. Settings that decide what the
// run computes come from the record; if one was given and differs, Error naming the flag. Older records
// without a key take the command line's value. `step` is the run's current step (for --steps checks).
TrainOptions merge_resume(const TrainOptions& cli, const nlohmann::json& record, int64_t step);

// The default config preset per model when --config is not given.
std::string default_preset(const std::string& model);

}  // namespace bytelm
