// trainer.cpp — the training loop (see trainer.h).
#include "train/trainer.h"

#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "data/corpus.h"
#include "io/atomic_file.h"
#include "model/blt.h"
#include "model/checkpoint.h"
#include "train/adamw.h"
#include "train/evaluate.h"
#include "train/loader.h"
#include "train/memory_check.h"
#include "util/device.h"
#include "util/error.h"
#include "util/platform.h"

namespace bytelm {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::atomic<bool> g_interrupted{false};
void on_sigint(int) {
  g_interrupted = true;
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C kills at once
}

double lr_at(const TrainOptions& o, int64_t step) {  // step counts from 1
  if (o.warmup > 0 && step <= o.warmup) return o.lr * double(step) / double(o.warmup);
  double span = std::max<int64_t>(1, o.steps - o.warmup);
  double progress = std::min(1.0, double(step - o.warmup) / span);
  double min_lr = o.lr * o.min_lr_ratio;
  return min_lr + 0.5 * (o.lr - min_lr) * (1 + std::cos(M_PI * progress));
}

torch::Tensor to_tensor(const std::vector<uint8_t>& buf, int64_t rows, int64_t cols, const torch::Device& device) {
  auto t = torch::from_blob(const_cast<uint8_t*>(buf.data()), {rows, cols}, torch::kUInt8).to(torch::kLong);
  return t.to(device);
}

// Metrics lines (JSONL) appended to OUT/metrics.jsonl; the file is created by the first line, so a run that
// fails before logging leaves no empty file behind.
class MetricsFile {
 public:
  explicit MetricsFile(std::string path) : path_(std::move(path)) {}
  void write(const json& line) {
    if (!file_.is_open()) file_.open(path_, std::ios::app);
    file_ << line.dump() << "\n" << std::flush;
  }

 private:
  std::string path_;
  std::ofstream file_;
};

// A new run's output directory: created (or reused if empty) and probed for writing before any work, so an
// unwritable --out fails at once. If the run fails before its first checkpoint, what it made is removed.
class FreshOutDir {
 public:
  explicit FreshOutDir(const std::string& dir) : dir_(dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    created_ = !fs::exists(dir, ec);
    fs::create_directories(dir, ec);
    if (ec) throw Error("--out " + dir + ": cannot create the directory (" + ec.message() + ")");
    const std::string probe = dir + "/.bytelm-write-test";
    try {
      write_file_atomic(probe, "");
    } catch (const Error&) {
      if (created_) fs::remove(dir, ec);
      throw Error("--out " + dir + ": the directory is not writable");
    }
    fs::remove(probe, ec);
  }
  ~FreshOutDir() {
    if (kept_) return;
    std::error_code ec;
    if (created_) std::filesystem::remove_all(dir_, ec);
    else std::filesystem::remove(dir_ + "/metrics.jsonl", ec);
  }
  void keep() { kept_ = true; }

 private:
  std::string dir_;
  bool created_ = false, kept_ = false;
};

// The run record (trainer.json) of an existing run; Error if missing or corrupt.
json read_run_record(const std::string& out, int64_t* step) {
  const std::string path = out + "/trainer.json";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw Error(out + ": nothing to resume (no trainer.json); run without --resume first");
  try {
    json j = json::parse(read_file(path));
    *step = j.at("step").get<int64_t>();
    return j;
  } catch (const json::exception& e) {
    throw Error(path + ": invalid trainer state (" + std::string(e.what()) + ")");
  }
}

// The command line, or on --resume the stored run merged with it; checked.
TrainOptions resolve_options(const TrainOptions& cli, json* record, int64_t* start_step) {
  if (cli.out.empty()) throw Error("--out is required");
  TrainOptions opt = cli;
  if (cli.resume) {
    *record = read_run_record(cli.out, start_step);
    opt = merge_resume(cli, *record, *start_step);
  } else {
    if (opt.model.empty()) throw Error("--model is required (transformer | megabyte | entropy | blt)");
    if (opt.config.empty()) opt.config = default_preset(opt.model);
    std::error_code ec;
    if (std::filesystem::exists(cli.out + "/trainer.json", ec))
      throw Error(cli.out + ": already holds a training run; use --resume to continue it or another --out");
  }
  check_train_options(opt);
  if (opt.data.empty()) throw Error("--data is required");
  if (!opt.entropy_model.empty() && opt.model != "blt" && !cli.resume) throw Error("--entropy-model is for --model blt");
  if (opt.bytes_per_patch > 0 && opt.model != "blt" && !cli.resume) throw Error("--bytes-per-patch is for --model blt");
  return opt;
}

// The corpus a run trains on, summarised in its record; on resume the data must not have changed.
json corpus_summary(const Corpus& corpus) {
  return json{{"bytes", corpus.size(Split::All)}, {"files", corpus.num_files()}};
}

bool is_out_of_memory(const std::string& msg) {
  for (const char* s : {"can't allocate memory", "out of memory", "Cannot allocate memory", "bad_alloc"})
    if (msg.find(s) != std::string::npos) return true;
  return false;
}

// BLT gains over a byte model only when patches are several bytes long; the paper's are 4.5-8.
void warn_if_useless_patches(double mean, const std::string& mode) {
  if (mode == "entropy" && mean < 2.0)
    std::fprintf(stderr, "bytelm: warning: %.2f bytes per patch is almost byte-level, so BLT saves little compute; "
                 "train the entropy model longer or set --bytes-per-patch (e.g. 4.5)\n", mean);
  else if (mean > 16.0)
    std::fprintf(stderr, "bytelm: warning: %.2f bytes per patch is very coarse; the local models must predict "
                 "long patches (lower --bytes-per-patch)\n", mean);
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

std::string shown(double v, const char* fmt = "%.3f") {  // "-" until a value exists
  if (std::isnan(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

}  // namespace

int run_train(const TrainOptions& cli) {
  json record;
  int64_t start_step = 0;
  const TrainOptions opt = resolve_options(cli, &record, &start_step);
  check_device(opt.device);
  const bool bf16 = use_bf16(opt.precision, opt.device);
  setup_threads(opt.threads);
  warn_if_slow_blas();
  torch::Device device(opt.device);
  const std::string trainer_path = opt.out + "/trainer.json";

  // Model: fresh from the config, or the checkpoint's config and weights on --resume.
  ModelConfig cfg;
  if (opt.resume) {
    cfg = load_checkpoint_config(opt.out);
    if (opt.given.count("model") && cfg.model != cli.model)
      throw Error("--model " + cli.model + " differs from the run's " + cfg.model + " (" + opt.out + ")");
    if (opt.given.count("config") && load_config(cli.config, cfg.model).to_json() != cfg.to_json())
      throw Error("--config " + cli.config + " differs from the run's config.json (" + opt.out + ")");
  } else {
    cfg = load_config(opt.config, opt.model);
  }
  std::unique_ptr<FreshOutDir> fresh_dir;
  if (!opt.resume) fresh_dir = std::make_unique<FreshOutDir>(opt.out);

  Corpus corpus(opt.data, opt.val_fraction);
  const int64_t T = cfg.context;
  if (corpus.size(Split::Train) < T)
    throw Error("training split has " + std::to_string(corpus.size(Split::Train)) +
                " bytes, shorter than one window of " + std::to_string(T) + " bytes (context)");
  if (opt.resume && record.contains("corpus") && record["corpus"] != corpus_summary(corpus))
    throw Error("--data: the files changed since the run started (now " + corpus_summary(corpus).dump() + ", was " +
                record["corpus"].dump() + "); resuming would not continue the same run");

  if (cfg.model == "blt" && !opt.resume && cfg.patching.mode == "entropy" && opt.entropy_model.empty())
    throw Error("BLT with entropy patching needs --entropy-model DIR (train one with --model entropy)");

  torch::manual_seed(uint64_t(opt.seed));
  auto model = make_model(cfg);
  if (!device.is_cuda()) check_training_memory(cfg, model->num_params(), opt.batch);
  if (cfg.model == "blt" && !opt.resume && !opt.entropy_model.empty())
    load_patcher(static_cast<BltImpl&>(*model), *load_model(opt.entropy_model));
  model->to(device);
  if (cfg.model == "blt" && !opt.resume && opt.bytes_per_patch > 0) {
    // Calibrate the entropy threshold on 8 windows of the training split (as `bytelm patch` does).
    const int64_t rows = 8;
    std::vector<uint8_t> buf(size_t(rows * T));
    corpus.sample(Split::Train, uint64_t(opt.seed) ^ 0xca1b, 0, rows, T, buf.data());
    auto& blt = static_cast<BltImpl&>(*model);
    const double th = blt.calibrate_threshold(to_tensor(buf, rows, T, device), opt.bytes_per_patch);
    cfg = blt.config();
    std::fprintf(stderr, "bytelm: entropy threshold %.4f nats gives %.2f bytes per patch on the training data\n", th,
                 opt.bytes_per_patch);
  }
  AdamW adam(trainable_parameters_of(*model), AdamWOptions{opt.beta1, opt.beta2, opt.adam_eps, opt.weight_decay});
  const int64_t offset = model->vocab_offset();

  if (opt.resume) {
    auto meta = load_tensors_into(opt.out + "/model.safetensors", named_parameters_of(*model));
    auto ometa = load_tensors_into(opt.out + "/optimizer.safetensors", adam.state());
    if (meta["step"] != std::to_string(start_step) || ometa["step"] != std::to_string(start_step))
      throw Error(opt.out + ": model, optimizer and trainer.json are from different steps; checkpoint is inconsistent");
    adam.set_t(start_step);
    if (start_step >= opt.steps) {
      std::fprintf(stderr, "bytelm: %s is already at step %lld of %lld (--steps N extends it)\n", opt.out.c_str(),
                   (long long)start_step, (long long)opt.steps);
      return 0;
    }
  }

  // FLOPs for MFU: training = 3 x forward (paper's accounting), per byte.
  double train_flops_per_byte = 3 * model->forward_flops_per_byte();
  // MFU denominator: --peak-flops, else on CUDA the H100's dense bf16 peak (the yardstick),
  // else a matmul measured now on the CPU.
  const double peak = opt.peak_flops > 0 ? opt.peak_flops
                      : device.is_cuda() ? kH100DenseBf16Flops
                                         : measure_matmul_peak(opt.device, 0, 0.5);

  std::fprintf(stderr, "bytelm: %s %s, %.2fM parameters, context %lld, batch %lld x %lld, %s; "
                       "corpus %s: %lld train / %lld val bytes in %lld files\n",
               opt.resume ? "resuming" : "training", cfg.model.c_str(), model->num_params() / 1e6, (long long)T,
               (long long)opt.batch, (long long)opt.accum, (opt.device + (bf16 ? " bf16" : " fp32")).c_str(),
               opt.data[0].c_str(), (long long)corpus.size(Split::Train), (long long)corpus.size(Split::Val),
               (long long)corpus.num_files());

  if (opt.warmup > opt.steps)
    std::fprintf(stderr, "bytelm: warning: --warmup %lld is longer than the run (--steps %lld): the learning rate "
                 "never reaches --lr\n", (long long)opt.warmup, (long long)opt.steps);
  MetricsFile metrics(opt.out + "/metrics.jsonl");
  auto save = [&](int64_t step) {
    std::map<std::string, std::string> meta{{"step", std::to_string(step)}};
    save_model(opt.out, *model, meta);
    save_tensors(opt.out + "/optimizer.safetensors", adam.state(), meta);
    json tj = train_record(opt);
    tj["corpus"] = corpus_summary(corpus);
    tj["step"] = step;
    write_file_atomic(trainer_path, tj.dump(2) + "\n");
    if (fresh_dir) fresh_dir->keep();
  };
  // Validation: fixed windows of the validation split (`bytelm eval --split val` scores the same ones).
  auto validate_bpb = [&]() {
    model->eval();
    const double bpb = validation_bpb(*model, corpus, opt.batch, opt.eval_batches, opt.device, bf16);
    model->train();
    return bpb;
  };

  g_interrupted = false;
  auto old_handler = std::signal(SIGINT, on_sigint);
  const bool tty = stderr_is_tty();
  const auto t_start = Clock::now();
  auto t_last = t_start;
  int64_t bytes_since = 0;
  double last_val = NAN;
  model->train();
  // Batches for sample indices step * accum + micro, prepared ahead on a background thread.
  BatchLoader loader(corpus, Split::Train, uint64_t(opt.seed), opt.batch, T, uint64_t(start_step + 1) * opt.accum,
                     device);
  double loss_logged = NAN;  // host copies, refreshed on logging steps only
  int exit_code = 0;
  bool finished = false;
  int64_t step = start_step + 1;

  try {
  for (; step <= opt.steps; ++step) {
    // Loss and gradient norm stay on the device; they are read (a synchronisation) only when logged.
    torch::Tensor loss_t;
    for (int64_t micro = 0; micro < opt.accum; ++micro) {
      auto x = loader.next();
      if (step == start_step + 1 && micro == 0 && cfg.model == "blt") {
        // FLOPs per byte depend on the mean patch size: measure it on the first batch.
        auto& blt = static_cast<BltImpl&>(*model);
        blt.set_mean_patch_size(blt.measure_patch_size(x));
        train_flops_per_byte = 3 * model->forward_flops_per_byte();
        std::fprintf(stderr, "bytelm: mean patch size %.2f bytes on the first batch\n", blt.mean_patch_size());
        warn_if_useless_patches(blt.mean_patch_size(), cfg.patching.mode);
      }
      torch::Tensor loss;
      {
        AutocastScope autocast(device, bf16);
        loss = byte_loss(model->forward(x), x, offset) / double(opt.accum);
      }
      loss.backward();
      loss_t = micro == 0 ? loss.detach() : loss_t + loss.detach();
    }
    const double lr = lr_at(opt, step);
    auto grad_norm_t = adam.clip_step_and_clear(lr, opt.clip);
    bytes_since += opt.batch * opt.accum * T;

    const bool last = step == opt.steps;
    const bool stop_now = g_interrupted || (opt.exit_after > 0 && step >= opt.exit_after);
    if ((opt.eval_every > 0 && step % opt.eval_every == 0) || last) {
      last_val = validate_bpb();
      metrics.write({{"step", step}, {"val_bpb", last_val},
                     {"elapsed_s", std::chrono::duration<double>(Clock::now() - t_start).count()}});
      if (!tty) std::fprintf(stderr, "step %lld: val bpb %s\n", (long long)step, shown(last_val, "%.4f").c_str());
    }
    if (step % opt.log_every == 0 || last || stop_now || tty) {
      auto now = Clock::now();
      double dt = std::chrono::duration<double>(now - t_last).count();
      double elapsed = std::chrono::duration<double>(now - t_start).count();
      double bps = dt > 0 ? bytes_since / dt : 0;
      double eta = (opt.steps - step) * (elapsed / double(step - start_step));
      if (step % opt.log_every == 0 || last || stop_now) {
        loss_logged = loss_t.item<double>();
        const double loss_sum = loss_logged, grad_norm = grad_norm_t.item<double>();
        metrics.write({{"step", step}, {"loss", loss_sum}, {"bpb", loss_sum / std::log(2.0)}, {"lr", lr},
                       {"grad_norm", grad_norm}, {"bytes_per_s", bps}, {"flops_per_s", bps * train_flops_per_byte},
                       {"mfu", bps * train_flops_per_byte / peak}, {"elapsed_s", elapsed}});
        t_last = now;
        bytes_since = 0;
        if (!tty)
          std::fprintf(stderr, "step %lld/%lld loss %.4f bpb %.3f lr %.2e gnorm %.2f %sB/s mfu %.1f%% eta %s\n",
                       (long long)step, (long long)opt.steps, loss_sum, loss_sum / std::log(2.0), lr, grad_norm,
                       format_rate(bps).c_str(), 100 * bps * train_flops_per_byte / peak, format_duration(eta).c_str());
      }
      if (tty) {
        const int width = 24;
        int filled = int(width * double(step) / double(opt.steps));
        std::string bar(filled, '#');
        bar += std::string(width - filled, '.');
        std::fprintf(stderr, "\r[%s] %lld/%lld loss %s bpb %s val %s %sB/s eta %s   ", bar.c_str(), (long long)step,
                     (long long)opt.steps, shown(loss_logged).c_str(), shown(loss_logged / std::log(2.0)).c_str(),
                     shown(last_val).c_str(), format_rate(bps).c_str(), format_duration(eta).c_str());
        if (last || stop_now) std::fprintf(stderr, "\n");
      }
    }
    if ((opt.ckpt_every > 0 && step % opt.ckpt_every == 0) || last || stop_now) save(step);
    finished = last;
    if (stop_now && !last) {
      std::fprintf(stderr, "bytelm: stopped at step %lld; checkpoint saved to %s (continue with --resume)\n",
                   (long long)step, opt.out.c_str());
      exit_code = g_interrupted ? 130 : 0;
      break;
    }
  }
  } catch (const std::exception& e) {
    // Allocation failures are the user's to fix (batch, context, device): one line, exit 1. The last
    // checkpoint stays as it was (every file is written atomically).
    std::signal(SIGINT, old_handler);
    if (tty) std::fprintf(stderr, "\n");
    if (!is_out_of_memory(e.what())) throw;
    throw Error("out of memory at step " + std::to_string(step) + " with --batch " + std::to_string(opt.batch) + ": " +
                    first_line(e.what()),
                1);
  }
  std::signal(SIGINT, old_handler);
  if (finished && std::isnan(last_val))
    std::fprintf(stderr, "bytelm: done (no validation split); checkpoint in %s\n", opt.out.c_str());
  else if (finished)
    std::fprintf(stderr, "bytelm: done; validation bpb %.4f; checkpoint in %s\n", last_val, opt.out.c_str());
  return exit_code;
}

}  // namespace bytelm
