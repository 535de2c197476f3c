// entropy_threshold.h — the global entropy rule on a plain list of per-byte entropies, and the threshold
// that gives a wanted mean patch size (for `bytelm patch` and the bench; BLT's own rule is blt::Patcher).
// Torch-free.
#pragma once
#include <cstdint>
#include <vector>

namespace bytelm {

// Patch start offsets (byte indices) of a sequence under the global entropy rule (BLT: byte i >= 1 starts a
// patch if entropies[i] > threshold; byte 0 always does), with optional max patch length (0 = none).
std::vector<int64_t> patch_starts(const std::vector<float>& entropies, double threshold, int64_t max_patch_length);

// Bisection on the threshold so the mean patch size of `entropies` is close to `bytes_per_patch`.
double calibrate_threshold(const std::vector<float>& entropies, double bytes_per_patch, int64_t max_patch_length);

}  // namespace bytelm
