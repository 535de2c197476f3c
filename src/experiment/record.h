// record.h — a finished run's record.json: its settings and provenance (config, seed, commit, machine),
// training (steps, bytes, FLOPs, wall time, bytes/s, the validation curve against FLOPs), held-out bpb,
// inference FLOPs per byte (BLT with and without its entropy model), patch statistics, a BLT threshold sweep
// and generation speed (which `--retime` can measure again on a quiet machine). Every figure of the report is
// read from these records.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

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
  std::string dir;  // the training run's directory (checkpoint, metrics.jsonl)
  int64_t steps = 0;
  int64_t context = 0;              // T (tokens for bpe)
  double train_flops_per_step = 0;  // 3 x forward FLOPs per unit x units per step
};

nlohmann::json make_record(const Plan& plan, const PlanRun& run, const TrainedRun& trained, const RunnerOptions& opt);

// Generation speed (batch 1, KV caches, the plan's length from the first held-out bytes): the median bytes/s
// of kGenerationRepeats timed generations with the smallest and largest, and the provenance (load average)
// at the time it was timed.
constexpr int kGenerationRepeats = 3;
nlohmann::json generation_json(const Plan& plan, const PlanRun& run, LanguageModelImpl& model,
                               const Tokenizer* tokenizer, const std::string& held_out);

// `experiment run --retime`: the records with their generation speed measured again from each run's checkpoint
// (DIR/train), every run once per round for kRetimeRounds rounds, interleaved so that a machine whose speed
// drifts (other guests on the host) slows every run alike; marked "retimed", with the first timing kept
// under "first_timing". Nothing else changes. Runs that generate nothing (entropy models) are not passed.
constexpr int kRetimeRounds = 9;
struct RetimeRun {
  const PlanRun* run;
  std::string dir;  // DIR/runs/NAME
  nlohmann::json record;
};
std::vector<nlohmann::json> retime_records(const Plan& plan, const std::vector<RetimeRun>& runs,
                                           const RunnerOptions& opt);

}  // namespace bytelm::experiment
