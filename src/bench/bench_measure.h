// bench_measure.h — how `bytelm bench` measures: repeated timed runs after warm-up, reported as the median
// with the smallest and largest sample (util/stats.h), with minor page faults.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/stats.h"

namespace bytelm {

// The fp32 (CPU) or bf16 (CUDA) matmul peak in FLOP/s on a device, measured like every other figure: warm-up,
// then timed runs of n x n x n products, each sample long enough (>= ~0.2 s) to time well. Its three matrices
// are allocated once, when the meter is made, and reused by every measurement: re-measuring the peak between
// cases then neither allocates in the heap the cases keep nor frees pages that they would fault back in.
class PeakMeter {
 public:
  PeakMeter(const std::string& device, int64_t n);
  std::vector<double> samples(int64_t count);  // FLOP/s of each timed sample
  Spread measure(int64_t count) { return spread_of(samples(count)); }

 private:
  struct Matrices;  // keeps <torch/torch.h> out of this header
  std::shared_ptr<Matrices> m_;
};

// Runs `once` (which returns how many bytes it produced) `repeat` times, waiting for the device after each:
// bytes/s of each run, minor page faults per byte over all runs, and the bytes of the last run.
struct Measured {
  Spread bytes_per_s;
  double faults_per_byte = 0;
  int64_t bytes = 0;
};
Measured measure_runs(int64_t repeat, const std::string& device, const std::function<int64_t()>& once);

// JSON fields NAME (the median), NAME_min and NAME_max.
void put_spread(nlohmann::json& j, const std::string& name, const Spread& s);

// "4354 (4210-4400)": a median with its spread, for the table ("-" without samples).
std::string with_spread(const Spread& s, const char* fmt = "%.0f");

}  // namespace bytelm
