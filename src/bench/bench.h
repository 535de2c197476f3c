// bench.h — `bytelm bench`: measured matmul peak, then per model config: training bytes/s, model
// FLOP/s, fraction of the peak (and on CUDA, MFU against the H100's 989 TFLOP/s), batch-1 and batched
// generation bytes/s, peak resident and GPU memory, minor page faults; optionally MEGABYTE's largest
// trainable context. Every speed is measured after warm-up, several times: the median is the figure, with
// the smallest and largest sample beside it (JSON fields *_min, *_max).
// Output: one JSON object per line on stdout (or --json-out), then a table on stderr.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "util/inference.h"

namespace bytelm {

// The inference settings (util/inference.h): device, precision, decode and decode_weights apply to every
// case; threads are training's (generation at batch 1 uses gen_threads).
struct BenchOptions : InferenceSettings {
  std::vector<std::string> configs{"mb_cpu", "tf_cpu", "blt_cpu", "blt_demo"};  // files or presets
  int64_t batch = 0;         // 0 = each config's bench batch (4 on CPU)
  int64_t steps = 5;         // timed training steps, each one sample (after `warmup` untimed steps)
  int64_t warmup = 2;        // untimed training steps first: first-touch page faults, caches, kernel choice
  int64_t repeat = 3;        // timed runs of each generation case and of the matmul peak (after a warm-up)
  int64_t gen_bytes = 1024;  // bytes generated at batch 1 (exactly; past the context the window slides)
  std::vector<std::string> uncached{"blt_demo"};  // BLT configs whose --no-cache path is also timed
  int64_t peak_n = 2048;                          // matmul size for the peak measurement
  bool skip_train = false, skip_generate = false;
  int64_t gen_batch = 0;      // also time generation of this many prompts at once (0 = off)
  int64_t max_context = 0;    // MEGABYTE: search the largest context that trains at batch 1, up to this (0 = off)
  int gen_threads = 1;        // batch-1 generation (per-op overhead bound: 1 thread measured fastest)
  std::string json_out;       // also append JSON lines to this file
  std::string entropy_model;  // with data: mean bytes per patch of this entropy model's patcher
  std::vector<std::string> data;
  // Speculative decoding on trained checkpoints (bench_speculative.cpp): with spec_target set, only this runs.
  std::string spec_target, spec_draft;  // checkpoints; spec_draft "self": a BLT target's own entropy model
  std::vector<int64_t> spec_k{1, 2, 4, 8};
  double spec_p_min = 0.5;
  double spec_temperature = 0;
  std::string spec_prompt = "It is a truth universally acknowledged, that a single man in possession";
};
int run_bench(const BenchOptions& opt);
int run_speculative_bench(const BenchOptions& opt);

}  // namespace bytelm
