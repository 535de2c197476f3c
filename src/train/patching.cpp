// patching.cpp — `bytelm patch` (see patching.h).
#include "train/patching.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "blt/hash.h"
#include "blt/patcher.h"
#include "io/atomic_file.h"
#include "model/blt.h"
#include "model/checkpoint.h"
#include "train/evaluate.h"
#include "util/error.h"
#include "util/platform.h"

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

int run_patch(const PatchOptions& opt) {
  if (opt.file.empty()) throw Error("patch needs a FILE");
  if (std::isnan(opt.threshold) || opt.threshold < 0) throw Error("--threshold must be a number >= 0");
  if (opt.max_patch_length < 0) throw Error("--max-patch-length must be >= 1 (or 0 for none)");
  if (opt.threshold > 0 && opt.bytes_per_patch > 0) throw Error("--threshold and --bytes-per-patch exclude each other");
  auto loaded = load_for_inference(opt.entropy_model, opt.device, opt.threads);
  std::shared_ptr<LanguageModelImpl> model = loaded;
  double threshold = blt::kReleasedThreshold;
  int64_t max_len = opt.max_patch_length;
  if (loaded->config().model == "blt") {
    // A BLT checkpoint: use its patcher as a stand-alone entropy model, and its patching settings.
    auto cfg = loaded->config();
    if (!cfg.has_patcher) throw Error(opt.entropy_model + ": BLT checkpoint has no patcher (entropy model)");
    ModelConfig ec;
    ec.model = "entropy";
    ec.context = cfg.patcher_context;
    ec.global = cfg.patcher;
    auto entropy = std::make_shared<EntropyModelImpl>(ec);
    torch::NoGradGuard no_grad;
    auto dst = entropy->named_parameters();
    for (const auto& p : static_cast<BltImpl&>(*loaded).model->patcher->named_parameters())
      dst.find("patcher." + p.key())->copy_(p.value());
    entropy->to(torch::Device(opt.device));
    entropy->eval();
    model = entropy;
    threshold = cfg.patching.threshold;
    if (max_len == 0) max_len = cfg.patching.max_patch_length;
  } else if (loaded->config().model != "entropy") {
    throw Error(opt.entropy_model + ": a " + loaded->config().model + " model is not an entropy model");
  }
  const std::string bytes = read_file(opt.file);
  if (bytes.empty()) throw Error(opt.file + ": empty input");
  auto ent = byte_entropies(*model, bytes, opt.device);
  if (opt.threshold > 0) threshold = opt.threshold;
  if (opt.bytes_per_patch > 0) {
    // Calibrate on a sample (the first 64 KiB) so that large files stay fast.
    std::vector<float> sample(ent.begin(), ent.begin() + std::min<size_t>(ent.size(), 65536));
    threshold = calibrate_threshold(sample, opt.bytes_per_patch, max_len);
  }
  auto starts = patch_starts(ent, threshold, max_len);
  const double mean = double(bytes.size()) / double(starts.size());
  if (opt.json) {
    nlohmann::json j{{"file", opt.file}, {"bytes", bytes.size()}, {"threshold", threshold},
                     {"max_patch_length", max_len}, {"patches", starts.size()}, {"mean_bytes_per_patch", mean},
                     {"boundaries", starts}, {"entropies", ent}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  // Patches separated by '|'; on a terminal, alternate background colours instead.
  const bool tty = isatty(1);
  size_t next = 1;
  bool shade = false;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (next < starts.size() && int64_t(i) == starts[next]) {
      ++next;
      shade = !shade;
      if (!tty) std::fputc('|', stdout);
    }
    if (tty) std::fputs(shade ? "\x1b[48;5;153m" : "\x1b[48;5;223m", stdout);
    std::fputc(bytes[i], stdout);
  }
  if (tty) std::fputs("\x1b[0m", stdout);
  std::fputc('\n', stdout);
  std::fprintf(stderr, "%zu bytes, %zu patches, %.2f bytes per patch (threshold %.4f)\n", bytes.size(), starts.size(),
               mean, threshold);
  return 0;
}

}  // namespace bytelm
