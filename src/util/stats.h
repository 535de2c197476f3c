// stats.h — median and min-max spread of repeated measurements (the bench reports every figure this way).
// Torch-free, header-only.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace bytelm {

struct Spread {
  double median = 0, min = 0, max = 0;
  int64_t samples = 0;
};

// The median (the mean of the middle two for an even count), smallest and largest of `values`.
inline Spread spread_of(std::vector<double> values) {
  Spread s;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  s.median = n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
  s.min = values.front();
  s.max = values.back();
  s.samples = int64_t(n);
  return s;
}

}  // namespace bytelm
