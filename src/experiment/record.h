// record.h — a finished run's record.json: its settings and provenance (config, seed, commit, machine),
// training (steps, bytes, FLOPs, wall time, bytes/s, the validation curve against FLOPs), held-out bpb,
// inference FLOPs per byte (BLT with and without its entropy model), patch statistics, a BLT threshold sweep
// and generation speed. Every figure of the report is read from these records.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

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

}  // namespace bytelm::experiment
