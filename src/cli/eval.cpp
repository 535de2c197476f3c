// eval.cpp — `bytelm eval`: bits (and nats) per byte of a checkpoint over whole files, or over the run's own
// train or validation split (the data and split come from its trainer.json).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "data/corpus.h"
#include "data/token_corpus.h"
#include "eval/evaluate.h"
#include "eval/token_evaluate.h"
#include "io/atomic_file.h"
#include "model/checkpoint.h"
#include "tokenizer/tokenizer.h"
#include "util/device.h"
#include "util/error.h"
#include "util/platform.h"

namespace bytelm::cli {

namespace {

struct EvalOptions : InferenceSettings {  // device, precision, threads
  std::string ckpt;
  std::vector<std::string> data;  // files or directories; with --split train|val, default: the run's data
  std::string split = "all";      // all | train | val
  double val_fraction = -1;       // with --split train|val; < 0 = the run's (trainer.json), else 0.05
  int64_t batch = 4;
  int64_t stride = 0;                  // > 0: sliding windows moved by this many bytes
  bool strided = false;                // MEGABYTE's strided inference (two passes offset by P/2)
  std::string strided_keep = "early";  // early (the paper) | late: which of the two predictions a byte keeps
  bool json = false;
};

// The run record (trainer.json) of a checkpoint, or null if it has none (a model saved without training
// state) or it cannot be read.
nlohmann::json run_record(const std::string& ckpt) {
  std::error_code ec;
  if (!std::filesystem::exists(ckpt + "/trainer.json", ec)) return nullptr;
  try {
    return nlohmann::json::parse(read_file(ckpt + "/trainer.json"));
  } catch (const std::exception&) {
    return nullptr;
  }
}

Split parse_split(const std::string& s) {
  if (s == "all") return Split::All;
  if (s == "train") return Split::Train;
  if (s == "val") return Split::Val;
  throw Error("--split " + s + ": expected all, train or val");
}

// Dynamic patches (BLT, H-Net): the mean patch size on up to 8 windows of the scored bytes, in words, and in
// bytes (NaN for the others).
std::pair<std::string, double> measure_patches(LanguageModelImpl& model, Corpus& corpus, Split split,
                                               const std::string& device) {
  if (!model.dynamic_patches()) return {"", NAN};
  const int64_t len = std::min<int64_t>(model.config().context, corpus.size(split)), rows = 8;
  std::vector<uint8_t> buf(size_t(rows * len));
  corpus.sample(split, 1, 0, rows, len, buf.data());
  auto x = torch::from_blob(buf.data(), {rows, len}, torch::kUInt8).to(torch::Device(device), torch::kLong);
  const double mean = model.count_patches_of(x);
  return {model.describe_patches(), mean};
}

void print_report(const EvalOptions& opt, const std::vector<FileScore>& files, double run_val, double val_fraction,
                  bool bf16, double secs, const std::pair<std::string, double>& patches) {
  double nats = 0;
  int64_t bytes = 0, tokens = 0;
  nlohmann::json jf = nlohmann::json::array();
  for (const auto& f : files) {
    nats += f.nats;
    bytes += f.bytes;
    tokens += f.tokens;
    jf.push_back({{"path", f.path}, {"bytes", f.bytes}, {"bpb", f.nats / std::log(2.0) / double(f.bytes)}});
  }
  const double bpb = nats / std::log(2.0) / double(bytes);
  if (opt.json) {
    nlohmann::json j{{"ckpt", opt.ckpt},
                     {"split", opt.split},
                     {"stride", opt.stride},
                     {"strided", opt.strided ? opt.strided_keep : "off"},
                     {"bytes", bytes},
                     {"bpb", bpb},
                     {"nats_per_byte", nats / double(bytes)},
                     {"files", jf},
                     {"seconds", secs},
                     {"device", opt.device},
                     {"precision", bf16 ? "bf16" : "fp32"}};
    if (opt.split != "all") j["val_fraction"] = val_fraction;
    if (tokens > 0) {  // the BPE baseline: bpb is still nats over raw bytes; bytes per token beside it
      j["tokens"] = tokens;
      j["bytes_per_token"] = double(bytes) / double(tokens);
      j["nats_per_token"] = nats / double(tokens);
    }
    if (!std::isnan(run_val)) j["run_val_bpb"] = run_val;
    if (!std::isnan(patches.second)) j["mean_patch_size"] = patches.second;
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  if (jf.size() > 1 && jf.size() <= 50)
    for (const auto& f : jf)
      std::printf("%-60s %10lld bytes  %.4f bpb\n", f["path"].get<std::string>().c_str(),
                  (long long)f["bytes"].get<int64_t>(), f["bpb"].get<double>());
  std::printf("total: %lld bytes in %zu files, %.4f bits per byte, %.4f nats per byte (%.1fs)\n", (long long)bytes,
              jf.size(), bpb, nats / double(bytes), secs);
  if (tokens > 0)
    std::printf("tokens: %lld, %.3f bytes per token, %.4f nats per token\n", (long long)tokens,
                double(bytes) / double(tokens), nats / double(tokens));
  if (!std::isnan(run_val))
    std::printf("training's validation windows: %.4f bits per byte (the val_bpb in metrics.jsonl)\n", run_val);
  if (!patches.first.empty()) std::printf("patches: %s (8 windows of the scored bytes)\n", patches.first.c_str());
}

int run(const EvalOptions& opt) {
  if (opt.ckpt.empty()) throw Error("--ckpt is required");
  if (opt.batch < 1) throw Error("--batch must be >= 1");
  if (opt.stride < 0) throw Error("--stride must be >= 0 (0 = consecutive windows)");
  const Split split = parse_split(opt.split);
  if (opt.val_fraction >= 1) throw Error("--val-fraction must be in [0, 1)");
  // --split train|val: the run's data and val fraction (trainer.json) unless given.
  const nlohmann::json record = split == Split::All ? nlohmann::json(nullptr) : run_record(opt.ckpt);
  std::vector<std::string> data = opt.data;
  if (data.empty() && record.is_object() && record.contains("data"))
    data = record["data"].get<std::vector<std::string>>();
  if (data.empty())
    throw Error(split == Split::All ? "--data is required"
                                    : "--data is required (the checkpoint has no run record naming its data)");
  double val_fraction = opt.val_fraction;
  if (val_fraction < 0) val_fraction = record.is_object() ? record.value("val_fraction", 0.05) : 0.05;
  if (split == Split::All) val_fraction = 0;
  const bool bf16 = use_bf16(opt.precision, opt.device);
  auto model = load_for_inference(opt.ckpt, opt.device, opt.threads);
  Corpus corpus(data, val_fraction);
  if (corpus.size(split) == 0)
    throw Error("--split " + opt.split + ": the split is empty (--val-fraction " + std::to_string(val_fraction) + ")");
  const bool tty = stderr_is_tty() && !opt.json;
  const auto t0 = std::chrono::steady_clock::now();
  auto progress = [&](int64_t done, int64_t all) {
    if (!tty) return;
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "\r%lld/%lld bytes  eta %s   ", (long long)done, (long long)all,
                 format_duration(el / double(done) * double(all - done)).c_str());
  };
  // The BPE baseline scores tokens: every file's part encoded once, its token losses over its raw bytes.
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<TokenCorpus> tokens;
  if (model->reads_tokens()) {
    tokenizer = std::make_unique<Tokenizer>(load_checkpoint_tokenizer(opt.ckpt, model->config().vocab_size));
    tokens = std::make_unique<TokenCorpus>(corpus, *tokenizer, std::vector<Split>{split});
  }
  if (opt.strided && model->fixed_patch_size() == 0)
    throw Error("--strided is MEGABYTE's strided inference; this checkpoint is a " + model->config().model + " model");
  auto files = tokens ? score_token_files(*model, *tokens, split, opt.batch, opt.device, bf16, progress, opt.stride)
                      : score_files(*model, corpus, split, opt.batch, opt.device, bf16, progress, opt.stride,
                                    opt.strided, opt.strided_keep == "late");
  if (tty) std::fprintf(stderr, "\n");
  // Training's own validation number (the same windows it scored), when the run record says how.
  double run_val = NAN;
  if (split == Split::Val && record.is_object() && record.contains("batch") && record.contains("eval_batches")) {
    const int64_t b = record["batch"].get<int64_t>(), n = record["eval_batches"].get<int64_t>();
    run_val = tokens ? token_validation_bpb(*model, *tokens, b, n, opt.device, bf16)
                     : validation_bpb(*model, corpus, b, n, opt.device, bf16);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  print_report(opt, files, run_val, val_fraction, bf16, secs,
               tokens ? std::pair<std::string, double>{"", NAN} : measure_patches(*model, corpus, split, opt.device));
  return 0;
}

}  // namespace

Command add_eval(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  auto* e = app.add_subcommand("eval", "Bits per byte of a checkpoint over whole files");
  e->add_option("--ckpt", o->ckpt, "Checkpoint directory (required)");
  e->add_option("--data", o->data, "Files or directories to score (with --split train|val: default the run's data)")
      ->expected(1, -1);
  e->add_option(
       "--split", o->split,
       "all: every byte; train|val: the run's split of each file (val also scores training's validation windows)")
      ->check(CLI::IsMember({"all", "train", "val"}));
  e->add_option("--val-fraction", o->val_fraction, "With --split: the held-out tail fraction (default: the run's)");
  e->add_option("--batch", o->batch, "Context windows per forward pass");
  e->add_option("--stride", o->stride,
                "Sliding windows: move each window by S bytes (tokens, for the BPE baseline) and score its last S, so "
                "those past the first window see >= context - S of context (0 = consecutive windows)");
  e->add_flag("--strided", o->strided,
              "MEGABYTE: a second pass offset by P/2 bytes, keeping each byte's prediction from the earlier "
              "position in its patch (2x cost; combines with --stride) (default: off)");
  e->add_option("--strided-keep", o->strided_keep,
                "With --strided: early = each byte's prediction from the first half of its patch (the paper's rule), "
                "late = from the second half (for comparison)")
      ->check(CLI::IsMember({"early", "late"}));
  e->add_flag("--json", o->json, "Print one JSON object instead of text");
  add_inference_flags(e, o.get(), kDeviceFlags);
  return {e, [o] { return run(*o); }};
}

}  // namespace bytelm::cli
