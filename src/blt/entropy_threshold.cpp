// entropy_threshold.cpp — see entropy_threshold.h.
#include "blt/entropy_threshold.h"

#include <algorithm>
#include <string>

#include "util/error.h"

namespace bytelm {

std::vector<int64_t> patch_starts(const std::vector<float>& entropies, double threshold, int64_t max_patch_length) {
  std::vector<int64_t> starts;
  for (int64_t i = 0; i < int64_t(entropies.size()); ++i) {
    bool start = i == 0 || entropies[i] > threshold;
    if (!start && max_patch_length > 0 && i - starts.back() >= max_patch_length) start = true;
    if (start) starts.push_back(i);
  }
  return starts;
}

double calibrate_threshold(const std::vector<float>& entropies, double bytes_per_patch, int64_t max_patch_length) {
  if (entropies.empty()) throw Error("cannot calibrate a threshold on empty input");
  if (!(bytes_per_patch >= 1)) throw Error("--bytes-per-patch must be >= 1");
  const double n = double(entropies.size());
  auto mean = [&](double th) { return n / double(patch_starts(entropies, th, max_patch_length).size()); };
  double lo = 0, hi = 1;
  for (float h : entropies) hi = std::max(hi, double(h) + 1);
  if (mean(hi) < bytes_per_patch)
    throw Error("cannot reach " + std::to_string(bytes_per_patch) + " bytes per patch (at most " +
                std::to_string(mean(hi)) + " on this input)");
  for (int it = 0; it < 60; ++it) {  // the mean patch size grows with the threshold
    double mid = 0.5 * (lo + hi);
    (mean(mid) < bytes_per_patch ? lo : hi) = mid;
  }
  return hi;
}

}  // namespace bytelm
