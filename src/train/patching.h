// patching.h — `bytelm patch`: where an entropy model cuts a file into BLT patches, and threshold
// calibration for a target mean patch size.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace bytelm {

class LanguageModelImpl;


// Patch start offsets (byte indices) of `bytes` under the global entropy rule (BLT: byte i >= 1 starts a
// patch if entropies[i] > threshold; byte 0 always does), with optional max patch length (0 = none).
std::vector<int64_t> patch_starts(const std::vector<float>& entropies, double threshold, int64_t max_patch_length);

// Bisection on the threshold so the mean patch size of `entropies` is close to `bytes_per_patch`.
double calibrate_threshold(const std::vector<float>& entropies, double bytes_per_patch, int64_t max_patch_length);

struct PatchOptions {
  std::string entropy_model;   // entropy-model checkpoint or a BLT checkpoint (its patcher)
  std::string file;
  double threshold = 0;        // 0 = the checkpoint's (BLT) or the released default 1.3354
  double bytes_per_patch = 0;  // > 0: calibrate the threshold for this mean patch size
  int64_t max_patch_length = 0;
  bool json = false;
  std::string device = "cpu";
  int threads = 0;
};
int run_patch(const PatchOptions& opt);

}  // namespace bytelm
