// progress.h — what a training run reports as it goes: metrics lines (OUT/metrics.jsonl), log lines when
// stderr is not a terminal, a one-line bar with ETA when it is ('-' for values not measured yet). Torch-free.
#pragma once
#include <chrono>
#include <cmath>
#include <cstdint>

#include "train/run_dir.h"
#include "train/train_options.h"

namespace bytelm {

class Progress {
 public:
  // context: bytes per window; flops_per_byte: training FLOPs per byte (read at every log, BLT sets it after
  // its first batch); peak: the MFU denominator.
  Progress(const TrainOptions& opt, int64_t context, int64_t start_step, const double* flops_per_byte, double peak,
           MetricsFile& metrics);

  void validated(int64_t step, double bpb);
  // After every step. On logged steps `loss` and `grad_norm` are the step's values (NaN otherwise);
  // `final_line` ends the bar's line.
  // BLT: bytes_per_patch, the mean patch size of the steps since the last logged one (NaN for other models).
  void stepped(int64_t step, bool log, bool final_line, double loss, double grad_norm, double lr,
               double bytes_per_patch = NAN);

  double last_val() const { return last_val_; }
  // No log lines or bar on stderr from here on (data-parallel ranks other than 0: rank 0 reports the group).
  void mute() { muted_ = true; }

 private:
  double elapsed() const;
  void draw_bar(int64_t step, double bytes_per_s, double eta, bool final_line) const;

  const TrainOptions& opt_;
  const int64_t context_, start_step_;
  const double* flops_per_byte_;
  const double peak_;
  MetricsFile& metrics_;
  const bool tty_;
  bool muted_ = false;
  const std::chrono::steady_clock::time_point t_start_;
  std::chrono::steady_clock::time_point t_last_;
  int64_t bytes_since_ = 0;
  double loss_, last_val_;  // NaN until measured
};

// "-" for NaN (not measured yet), else the value in `fmt`.
std::string shown(double v, const char* fmt = "%.3f");

}  // namespace bytelm
