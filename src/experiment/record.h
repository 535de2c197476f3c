// record.h — a finished run's record.json: its settings and provenance (config, seed, commit, machine),
// training (steps, bytes, FLOPs, wall time, bytes/s, the validation curve against FLOPs), held-out bpb,
// inference FLOPs per byte (BLT with and without its entropy model), patch statistics, a BLT threshold sweep
// and generation speed (which `--retime` can measure again on a quiet machine). Every figure of the report is
// read from these records.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace bytelm {
class LanguageModelImpl;
class Tokenizer;
}  // namespace bytelm

namespace bytelm::experiment {

struct Plan;
struct PlanRun;
struct RunnerOptions;

struct TrainedRun {
  std::string dir;                   // the training run's directory (checkpoint, metrics.jsonl)
  int64_t steps = 0;
  int64_t context = 0;               // T (tokens for bpe)
  double train_flops_per_step = 0;   // 3 x forward FLOPs per unit x units per step
};

nlohmann::json make_record(const Plan& plan, const PlanRun& run, const TrainedRun& trained, const RunnerOptions& opt);

// Generation speed (batch 1, KV caches, the plan's length from the first held-out bytes): the median bytes/s
// of kGenerationRepeats timed generations with the smallest and largest, and the provenance (load average)
// at the time it was timed.
constexpr int kGenerationRepeats = 3;
nlohmann::json generation_json(const Plan& plan, const PlanRun& run, LanguageModelImpl& model,
                               const Tokenizer* tokenizer, const std::string& held_out);

// `experiment run --retime`: the record with its generation speed measured again from the run's checkpoint
// (RUN_DIR/train), marked "retimed" and keeping the first timing under "first_timing". Nothing else changes.
nlohmann::json retime_record(const Plan& plan, const PlanRun& run, const std::string& run_dir, nlohmann::json rec,
                             const RunnerOptions& opt);

}  // namespace bytelm::experiment
