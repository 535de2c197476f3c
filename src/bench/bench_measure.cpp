// bench_measure.cpp — see bench_measure.h.
#include "bench/bench_measure.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "util/device.h"
#include "util/memory.h"

namespace bytelm {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
}  // namespace

struct PeakMeter::Matrices {
  torch::Device device;
  torch::Tensor a, b, c;
  int64_t n;
};

PeakMeter::PeakMeter(const std::string& device_name, int64_t n) {
  const torch::Device device(device_name);
  torch::NoGradGuard no_grad;
  auto opts = torch::TensorOptions().dtype(device.is_cuda() ? torch::kBFloat16 : torch::kFloat32).device(device);
  m_ = std::make_shared<Matrices>(
      Matrices{device, torch::randn({n, n}, opts), torch::randn({n, n}, opts), torch::empty({n, n}, opts), n});
}

std::vector<double> PeakMeter::samples(int64_t count) {
  Matrices& m = *m_;
  torch::NoGradGuard no_grad;
  auto timed = [&](int64_t reps) {
    synchronize(m.device);
    auto t0 = Clock::now();
    for (int64_t i = 0; i < reps; ++i) torch::mm_out(m.c, m.a, m.b);
    synchronize(m.device);
    return seconds_since(t0);
  };
  timed(2);  // warm-up: caches, BLAS thread start-up
  const int64_t reps = std::max<int64_t>(1, int64_t(0.2 / std::max(timed(1), 1e-6)));
  std::vector<double> rates;
  for (int64_t i = 0; i < count; ++i) rates.push_back(double(reps) * 2.0 * double(m.n * m.n * m.n) / timed(reps));
  return rates;
}

Measured measure_runs(int64_t repeat, const std::string& device_name, const std::function<int64_t()>& once) {
  const torch::Device device(device_name);
  Measured m;
  std::vector<double> rates;
  int64_t total = 0;
  const int64_t faults0 = minor_page_faults();
  for (int64_t r = 0; r < repeat; ++r) {
    auto t0 = Clock::now();
    m.bytes = once();
    synchronize(device);
    rates.push_back(double(m.bytes) / seconds_since(t0));
    total += m.bytes;
  }
  m.faults_per_byte = double(minor_page_faults() - faults0) / double(std::max<int64_t>(total, 1));
  m.bytes_per_s = spread_of(rates);
  return m;
}

void put_spread(nlohmann::json& j, const std::string& name, const Spread& s) {
  j[name] = s.median;
  j[name + "_min"] = s.min;
  j[name + "_max"] = s.max;
}

std::string with_spread(const Spread& s, const char* fmt) {
  if (s.samples == 0) return "-";
  char a[32], b[32], c[32];
  std::snprintf(a, sizeof a, fmt, s.median);
  std::snprintf(b, sizeof b, fmt, s.min);
  std::snprintf(c, sizeof c, fmt, s.max);
  return s.samples == 1 ? std::string(a) : std::string(a) + " (" + b + "-" + c + ")";
}

}  // namespace bytelm
