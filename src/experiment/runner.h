// runner.h — `bytelm experiment run`: trains every run of a plan to its FLOPs budget and records what it
// measured. A run's directory DIR/runs/NAME holds the training run (train/: checkpoint, metrics.jsonl,
// trainer.json) and, once evaluated, record.json, written last: a run with a record is done and skipped; one
// with a checkpoint but no record is resumed (bit-exact, as `bytelm train --resume`). A run whose plan entry
// changed since it started is refused rather than mixed. Extras land beside: DIR/compressors.json,
// DIR/robustness/NAME.json.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bytelm::experiment {

struct Plan;
struct PlanRun;

struct RunnerOptions {
  std::string out;                 // DIR
  bool quick = false;              // make_quick(plan)
  int64_t exit_after = 0;          // stop every training after this step, as if interrupted (0 = off)
  std::vector<std::string> only;   // run only these runs (and the extras that need only them)
  int threads = 0;                 // CPU threads (0 = all cores)
  bool retime = false;             // only measure the generation speed of done runs again (nothing trains)
  std::string device = "cpu";      // where runs train, are scored and generate (cpu | cuda | cuda:N)
  std::string precision = "auto";  // training's: fp32 | bf16 | auto (bf16 on CUDA); scoring is always fp32
};

// Returns the exit code: 0 done (or stopped by --exit-after: rerun to continue), 130 interrupted.
int run_plan(const std::string& plan_path, const RunnerOptions& opt);

// The training steps that spend `budget` FLOPs at `train_flops_per_step` (>= 2).
int64_t steps_for_budget(double budget, double train_flops_per_step);

// What every record carries about where it was made: commit, machine, CPU, load average, time, device.
nlohmann::json provenance(const std::string& device = "cpu");

}  // namespace bytelm::experiment
