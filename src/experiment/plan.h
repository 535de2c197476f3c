// plan.h — an experiment plan (JSON): named datasets, then runs that each train one model on one dataset to
// a training budget in FLOPs, plus the extras measured on the results (compressor rows, BLT threshold sweeps,
// noised-text bpb, CUTE-like character tasks, generation speed). Torch-free. The schema, with defaults:
//   {"name": "...", "description": "...", "seed": 1234, "val_fraction": 0.05,
//    "datasets": {"text": ["data/corpus"], "code": ["data/kinds/code"]},           // files or directories
//    "train": {"batch": 8, "lr": 1e-3, "warmup": 20, ...},                           // defaults of every run
//    "eval": {"stride_fraction": 0.5, "max_bytes": 262144, "batch": 8},              // held-out scoring
//    "generation": {"bytes": 256, "prompt_bytes": 32},                               // bytes/s (0 = off)
//    "compressors": true,
//    "runs": [{"name": "tf", "model": "transformer", "config": "tf_tiny" | {...}, "data": "text",
//              "budget": 1e12, "seed": 1234, "train": {...}, "entropy_model": "ent", "bytes_per_patch": 4,
//              "sweep_bytes_per_patch": [2, 3, 6], "tags": {"group": "main"}}],
//    "robustness": {"data": "text", "runs": ["tf", "bpe"], "noise": ["uppercase", ...], "max_bytes": 32768,
//                   "cute": {"words": "/usr/share/dict/words", "items": 100, "shots": 3, "tasks": [...]}}}
// Paths in a plan are relative to the working directory (like the CLI's), not to the plan file.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bytelm::experiment {

// Settings handed to training (the flags of `bytelm train`); plan "train" defaults, then a run's own.
struct TrainSettings {
  int64_t batch = 8, accum = 1, warmup = 20, eval_points = 8, eval_batches = 4;
  double lr = 1e-3, min_lr_ratio = 0.1, weight_decay = 0.1, clip = 1.0;
};

struct PlanRun {
  std::string name;       // [A-Za-z0-9_.-]+, unique; the run's directory under DIR/runs/
  std::string model;      // transformer | megabyte | entropy | blt | bpe
  nlohmann::json config;  // a preset name or file (string), or an inline config object
  std::string data;       // a dataset name
  double budget = 0;      // training FLOPs (3 x forward FLOPs per byte x bytes trained)
  int64_t seed = 1234;
  TrainSettings train;
  std::string entropy_model;                       // blt: the name of an earlier run with model "entropy"
  double bytes_per_patch = 0;                      // blt entropy patching: calibrate the threshold to this mean patch
  std::vector<double> sweep_bytes_per_patch;       // blt entropy: inference-time thresholds for these patch sizes
  nlohmann::json tags = nlohmann::json::object();  // free labels for the report (e.g. {"group": "scaling"})
  nlohmann::json entry;  // the run's settings as resolved: a changed entry means a different run
};

struct EvalSettings {
  double stride_fraction = 0.5;  // sliding windows moved by this fraction of the context (1 = consecutive)
  int64_t max_bytes = 262144;    // held-out bytes scored per dataset (the split's head; 0 = all)
  int64_t batch = 8;
};

struct CuteSettings {
  std::string words = "/usr/share/dict/words";
  int64_t items = 100;  // test words per task
  int64_t shots = 3;    // solved examples before each question
  std::vector<std::string> tasks{"spell", "reverse", "substitute", "swap", "insert", "delete"};
};

struct RobustnessSettings {
  bool enabled = false;
  std::string data;               // a dataset name
  std::vector<std::string> runs;  // run names (empty = every run on that dataset except entropy models)
  std::vector<std::string> noise{"uppercase", "randomcase", "drop", "repeat", "antspeak"};
  int64_t max_bytes = 32768;
  bool cute = true;
  CuteSettings cute_settings;
};

struct Plan {
  std::string name, description;
  int64_t seed = 1234;
  double val_fraction = 0.05;
  std::map<std::string, std::vector<std::string>> datasets;
  EvalSettings eval;
  int64_t generation_bytes = 256, generation_prompt_bytes = 32;
  bool compressors = true;
  RobustnessSettings robustness;
  std::vector<PlanRun> runs;
  nlohmann::json source;  // the plan as read
};

// Reads and checks a plan; Error (exit 2) naming the file and the problem.
Plan load_plan(const std::string& path);
Plan parse_plan(const nlohmann::json& j, const std::string& where);

// --quick: the same plan as a smoke test: budgets / 100, held-out scoring, robustness and generation cut down.
void make_quick(Plan& plan);

const PlanRun* find_run(const Plan& plan, const std::string& name);

}  // namespace bytelm::experiment
