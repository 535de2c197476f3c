// run_state.h — what the trainer's files share (internal to src/train): one run's state, and the set-up
// steps in run_setup.cpp (options, config, corpus, model, optimiser, checkpoint) that trainer.cpp calls
// before its loop.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/corpus.h"
#include "data/token_corpus.h"
#include "distributed/data_parallel.h"
#include "distributed/dist_env.h"
#include "distributed/zero_adamw.h"
#include "model/model.h"
#include "optim/adamw.h"
#include "tokenizer/tokenizer.h"
#include "train/run_dir.h"
#include "train/train_options.h"

namespace bytelm {

using json = nlohmann::json;

// Everything one run holds.
struct Run {
  TrainOptions opt;
  json record;             // the stored run on --resume
  int64_t start_step = 0;  // the checkpoint's step (0 for a new run)
  torch::Device device{torch::kCPU};
  bool bf16 = false;
  ModelConfig cfg;
  std::unique_ptr<FreshOutDir> fresh_dir;  // a new run's directory until its first checkpoint
  std::unique_ptr<Corpus> corpus;
  std::unique_ptr<Tokenizer> tokenizer;  // bpe: the subword tokenizer, saved with every checkpoint
  std::unique_ptr<TokenCorpus> tokens;   // bpe: the splits in tokens
  LanguageModel model;
  DataParallel* dist = nullptr;     // the data-parallel hooks (no-ops in a single process)
  std::unique_ptr<AdamW> adam;      // the optimiser, or with --shard-optimizer:
  std::unique_ptr<ZeroAdamW> zero;  // ZeRO-1, its moments sharded across ranks
  double train_flops_per_byte = 0;  // 3 x forward (the papers' accounting)
  std::string patch_warning;        // the model's last patching_warning(), printed when it changes
  double peak = 0;                  // the MFU denominator
};

// (rows, cols) bytes -> int64 tensor on the device.
torch::Tensor to_tensor(const std::vector<uint8_t>& buf, int64_t rows, int64_t cols, const torch::Device& device);
// The corpus a run trains on, summarised in its record; on resume the data must not have changed.
json corpus_summary(const Corpus& corpus);
// The device a rank trains on: --device as given, except that data-parallel CUDA ranks each take their own
// GPU, cuda:LOCAL_RANK (as torchrun users expect); naming one index for all ranks is refused.
torch::Device train_device(const std::string& name, const DistEnv& env);
// Everything before the first step: options, threads, config, corpus, model, optimiser, checkpoint.
void set_up(Run& run, const TrainOptions& cli, const DistEnv& env);
// What every rank must agree on before training together, as named hashes (DataParallel::agree_on_start).
std::vector<std::pair<std::string, uint64_t>> start_settings(const Run& run);

}  // namespace bytelm
