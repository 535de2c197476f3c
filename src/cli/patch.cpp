// patch.cpp — `bytelm patch`: where an entropy model (or a BLT checkpoint's own patcher) cuts a file into
// BLT patches, or where an H-Net checkpoint's routing cuts it into chunks: '|' between patches (alternating
// colours on a terminal), or boundaries (and entropies) as JSON.
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "blt/entropy_threshold.h"
#include "blt/patcher.h"
#include "cli/commands.h"
#include "io/atomic_file.h"
#include "model/checkpoint.h"
#include "model/entropy_model.h"
#include "util/error.h"
#include "util/text.h"

namespace bytelm::cli {

namespace {

struct PatchOptions : InferenceSettings {  // device, threads
  std::string entropy_model;               // entropy-model checkpoint or a BLT checkpoint (its patcher)
  std::string ckpt;                        // or a checkpoint that learns its chunks (H-Net)
  int64_t stage = 0;                       // with --ckpt: the stage whose chunks are shown
  std::string file;
  double threshold = 0;        // 0 = the checkpoint's (BLT) or the released default 1.3354
  double bytes_per_patch = 0;  // > 0: calibrate the threshold for this mean patch size
  int64_t max_patch_length = 0;
  bool json = false;
};

nlohmann::json boundary_json(const std::string& bytes, const std::vector<int64_t>& starts) {
  const BoundaryProfile p = boundary_profile(bytes, starts);
  return {{"starts_at_whitespace", p.starts_at_whitespace},
          {"starts_at_word_start", p.starts_at_word_start},
          {"bytes_whitespace", p.bytes_whitespace},
          {"bytes_word_start", p.bytes_word_start}};
}

void print_profile(const nlohmann::json& p) {
  std::fprintf(stderr,
               "starts at whitespace %.0f%% (of all bytes %.0f%%), at a word start %.0f%% (of all bytes %.0f%%)\n",
               100 * p["starts_at_whitespace"].get<double>(), 100 * p["bytes_whitespace"].get<double>(),
               100 * p["starts_at_word_start"].get<double>(), 100 * p["bytes_word_start"].get<double>());
}

void print_patches(const std::string& bytes, const std::vector<int64_t>& starts) {
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
}

// --ckpt: the chunks a model learned to cut, window by window (each window of the model's context starts a
// chunk, as a sequence start does).
int run_learned(const PatchOptions& opt) {
  auto model = load_for_inference(opt.ckpt, opt.device, opt.threads);
  const std::string bytes = read_file(opt.file);
  if (bytes.empty()) throw Error(opt.file + ": empty input");
  const int64_t window = model->config().context;
  std::vector<int64_t> starts;
  for (size_t at = 0; at < bytes.size(); at += size_t(window)) {
    const std::string part = bytes.substr(at, size_t(window));
    auto x = torch::from_blob(const_cast<char*>(part.data()), {1, int64_t(part.size())}, torch::kUInt8)
                 .to(torch::Device(opt.device), torch::kLong);
    auto stages = model->chunk_starts(x);
    if (stages.empty()) throw Error(opt.ckpt + ": a " + model->config().model + " model does not learn its chunks");
    if (opt.stage < 0 || opt.stage >= int64_t(stages.size()))
      throw Error("--stage must be in [0, " + std::to_string(stages.size() - 1) + "]");
    for (int64_t b : stages[size_t(opt.stage)]) starts.push_back(int64_t(at) + b);
  }
  const double mean = double(bytes.size()) / double(starts.size());
  if (opt.json) {
    nlohmann::json j{{"file", opt.file},
                     {"bytes", bytes.size()},
                     {"stage", opt.stage},
                     {"chunks", starts.size()},
                     {"mean_bytes_per_chunk", mean},
                     {"boundaries", starts},
                     {"profile", boundary_json(bytes, starts)}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  print_patches(bytes, starts);
  std::fprintf(stderr, "%zu bytes, %zu chunks, %.2f bytes per chunk (stage %lld)\n", bytes.size(), starts.size(), mean,
               (long long)opt.stage);
  print_profile(boundary_json(bytes, starts));
  return 0;
}

int run(const PatchOptions& opt) {
  if (opt.file.empty()) throw Error("patch needs a FILE");
  if (opt.entropy_model.empty() == opt.ckpt.empty())
    throw Error("patch needs --entropy-model (BLT patches) or --ckpt (the chunks an H-Net learned), one of them");
  if (!opt.ckpt.empty()) return run_learned(opt);
  if (std::isnan(opt.threshold) || opt.threshold < 0) throw Error("--threshold must be a number >= 0");
  if (opt.max_patch_length < 0) throw Error("--max-patch-length must be >= 1 (or 0 for none)");
  if (opt.threshold > 0 && opt.bytes_per_patch > 0) throw Error("--threshold and --bytes-per-patch exclude each other");
  auto loaded = load_for_inference(opt.entropy_model, opt.device, opt.threads);
  LanguageModel model = loaded;
  double threshold = blt::kReleasedThreshold;
  int64_t max_len = opt.max_patch_length;
  if (loaded->dynamic_patches()) {
    // A checkpoint with its own patcher (BLT): it as a stand-alone entropy model, and its patching settings.
    try {
      model = loaded->entropy_patcher();
    } catch (const Error& e) {
      throw Error(opt.entropy_model + ": " + e.what());
    }
    threshold = loaded->config().patching.threshold;
    if (max_len == 0) max_len = loaded->config().patching.max_patch_length;
  } else if (!loaded->is_entropy_model()) {
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
    nlohmann::json j{{"file", opt.file},
                     {"bytes", bytes.size()},
                     {"threshold", threshold},
                     {"max_patch_length", max_len},
                     {"patches", starts.size()},
                     {"mean_bytes_per_patch", mean},
                     {"boundaries", starts},
                     {"entropies", ent},
                     {"profile", boundary_json(bytes, starts)}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  print_patches(bytes, starts);
  std::fprintf(stderr, "%zu bytes, %zu patches, %.2f bytes per patch (threshold %.4f)\n", bytes.size(), starts.size(),
               mean, threshold);
  print_profile(boundary_json(bytes, starts));
  return 0;
}

}  // namespace

Command add_patch(CLI::App& app) {
  auto o = std::make_shared<PatchOptions>();
  auto* pa = app.add_subcommand("patch", "Show where an entropy model (BLT) or an H-Net cuts a file into patches");
  pa->add_option("--entropy-model", o->entropy_model, "Entropy-model checkpoint, or a BLT checkpoint (its patcher)");
  pa->add_option("--ckpt", o->ckpt, "Or an H-Net checkpoint: the chunks its routing learned");
  pa->add_option("--stage", o->stage, "With --ckpt: the stage whose chunks are shown (default: 0, the outer)");
  pa->add_option("file", o->file, "The file to patch");
  auto* th =
      pa->add_option("--threshold", o->threshold, "Entropy threshold in nats (0 = the checkpoint's, else 1.3354)");
  pa->add_option("--bytes-per-patch", o->bytes_per_patch, "Find the threshold for this mean patch size (bisection)")
      ->excludes(th);
  pa->add_option("--max-patch-length", o->max_patch_length, "Split longer patches (0 = none)");
  pa->add_flag("--json", o->json, "Print entropies and boundaries as JSON");
  add_inference_flags(pa, o.get(), kDevice | kThreads);
  return {pa, [o] { return run(*o); }};
}

}  // namespace bytelm::cli
