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

json options_json(const TrainOptions& o) {
  return json{{"model", o.model}, {"config", o.config}, {"data", o.data}, {"steps", o.steps}, {"batch", o.batch},
              {"accum", o.accum}, {"lr", o.lr}, {"min_lr_ratio", o.min_lr_ratio}, {"warmup", o.warmup},
              {"weight_decay", o.weight_decay}, {"beta1", o.beta1}, {"beta2", o.beta2}, {"adam_eps", o.adam_eps},
              {"clip", o.clip}, {"seed", o.seed}, {"val_fraction", o.val_fraction}};
}

void validate(const TrainOptions& o) {
  auto need = [](bool ok, const std::string& what) { if (!ok) throw Error(what); };
  need(!o.out.empty(), "--out is required");
  need(!o.data.empty(), "--data is required");
  need(o.steps >= 1, "--steps must be >= 1");
  need(o.batch >= 1, "--batch must be >= 1");
  need(o.accum >= 1, "--accum must be >= 1");
  need(o.lr > 0 && o.lr < 10, "--lr must be in (0, 10)");
  need(o.min_lr_ratio >= 0 && o.min_lr_ratio <= 1, "--min-lr-ratio must be in [0, 1]");
  need(o.warmup >= 0, "--warmup must be >= 0");
  need(o.weight_decay >= 0, "--weight-decay must be >= 0");
  need(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1, "--beta1/--beta2 must be in [0, 1)");
  need(o.clip >= 0, "--clip must be >= 0");
  need(o.val_fraction >= 0 && o.val_fraction < 1, "--val-fraction must be in [0, 1)");
  need(o.eval_every >= 0 && o.ckpt_every >= 0 && o.log_every >= 1 && o.eval_batches >= 1 && o.exit_after >= 0,
       "--eval-every, --ckpt-every, --exit-after must be >= 0; --log-every, --eval-batches >= 1");
}

}  // namespace

int run_train(const TrainOptions& opt) {
  validate(opt);
  check_device(opt.device);
  const bool bf16 = use_bf16(opt.precision, opt.device);
  setup_threads(opt.threads);
  warn_if_slow_blas();
  torch::Device device(opt.device);
  namespace fs = std::filesystem;
  std::error_code ec;

  // Model: fresh from the config, or the checkpoint's config and weights on --resume.
  ModelConfig cfg;
  int64_t start_step = 0;
  const std::string trainer_path = opt.out + "/trainer.json";
  if (opt.resume) {
    if (!fs::exists(trainer_path, ec))
      throw Error(opt.out + ": nothing to resume (no trainer.json); run without --resume first");
    cfg = load_checkpoint_config(opt.out);
    if (!opt.model.empty() && cfg.model != opt.model)
      throw Error(opt.out + ": checkpoint is a " + cfg.model + " model, not " + opt.model);
    if (!opt.config.empty() && load_config(opt.config, cfg.model).to_json() != cfg.to_json())
      throw Error(opt.out + ": --config differs from the checkpoint's config.json");
  } else {
    if (opt.config.empty()) throw Error("--config is required");
    if (opt.model.empty()) throw Error("--model is required");
    cfg = load_config(opt.config, opt.model);
    if (fs::exists(trainer_path, ec))
      throw Error(opt.out + ": already holds a training run; use --resume to continue it or another --out");
  }

  Corpus corpus(opt.data, opt.val_fraction);
  const int64_t T = cfg.context;
  if (corpus.size(Split::Train) < T)
    throw Error("training split has " + std::to_string(corpus.size(Split::Train)) +
                " bytes, shorter than one window of " + std::to_string(T) + " bytes (context)");

  if (cfg.model == "blt" && !opt.resume && cfg.patching.mode == "entropy" && opt.entropy_model.empty())
    throw Error("BLT with entropy patching needs --entropy-model DIR (train one with --model entropy)");
  if (cfg.model != "blt" && !opt.entropy_model.empty()) throw Error("--entropy-model is for --model blt");

  torch::manual_seed(opt.seed);
  auto model = make_model(cfg);
  if (cfg.model == "blt" && !opt.resume && !opt.entropy_model.empty())
    load_patcher(static_cast<BltImpl&>(*model), *load_model(opt.entropy_model));
  model->to(device);
  AdamW adam(trainable_parameters_of(*model), AdamWOptions{opt.beta1, opt.beta2, opt.adam_eps, opt.weight_decay});
  const int64_t offset = model->vocab_offset();

  if (opt.resume) {
    json tj;
    try {
      tj = json::parse(read_file(trainer_path));
      start_step = tj.at("step").get<int64_t>();
    } catch (const json::exception& e) {
      throw Error(trainer_path + ": invalid trainer state (" + std::string(e.what()) + ")");
    }
    auto meta = load_tensors_into(opt.out + "/model.safetensors", named_parameters_of(*model));
    auto ometa = load_tensors_into(opt.out + "/optimizer.safetensors", adam.state());
    if (meta["step"] != std::to_string(start_step) || ometa["step"] != std::to_string(start_step))
      throw Error(opt.out + ": model, optimizer and trainer.json are from different steps; checkpoint is inconsistent");
    adam.set_t(start_step);
    if (start_step >= opt.steps) {
      std::fprintf(stderr, "bytelm: %s is already at step %lld of %lld\n", opt.out.c_str(), (long long)start_step,
                   (long long)opt.steps);
      return 0;
    }
  }

  fs::create_directories(opt.out, ec);
  if (ec) throw Error(opt.out + ": cannot create directory (" + ec.message() + ")");

  // FLOPs for MFU: training = 3 x forward (paper's accounting), per byte.
  double train_flops_per_byte = 3 * model->forward_flops_per_byte();
  // MFU denominator: --peak-flops, else on CUDA the H100's dense bf16 peak (the yardstick),
  // else a matmul measured now on the CPU.
  const double peak = opt.peak_flops > 0 ? opt.peak_flops
                      : device.is_cuda() ? kH100DenseBf16Flops
                                         : measure_matmul_peak(opt.device, 0, 0.5);

  std::fprintf(stderr, "bytelm: training %s, %.2fM parameters, context %lld, batch %lld x %lld, %s; "
                       "corpus %s: %lld train / %lld val bytes in %lld files\n",
               cfg.model.c_str(), model->num_params() / 1e6, (long long)T, (long long)opt.batch,
               (long long)opt.accum, (opt.device + (bf16 ? " bf16" : " fp32")).c_str(), opt.data[0].c_str(), (long long)corpus.size(Split::Train),
               (long long)corpus.size(Split::Val), (long long)corpus.num_files());

  std::ofstream metrics(opt.out + "/metrics.jsonl", std::ios::app);
  auto save = [&](int64_t step) {
    std::map<std::string, std::string> meta{{"step", std::to_string(step)}};
    save_model(opt.out, *model, meta);
    save_tensors(opt.out + "/optimizer.safetensors", adam.state(), meta);
    json tj = options_json(opt);
    tj["step"] = step;
    write_file_atomic(trainer_path, tj.dump(2) + "\n");
  };
  // Validation windows are fixed (seed-independent stream) so every evaluation sees the same bytes.
  const int64_t val_len = std::min<int64_t>(T, corpus.size(Split::Val));
  auto validate_bpb = [&]() -> double {
    if (val_len < 1) return NAN;
    torch::NoGradGuard no_grad;
    model->eval();
    auto total = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
    std::vector<uint8_t> buf(opt.batch * val_len);
    for (int64_t i = 0; i < opt.eval_batches; ++i) {
      corpus.sample(Split::Val, 0x5eed, i, opt.batch, val_len, buf.data());
      auto x = to_tensor(buf, opt.batch, val_len, device);
      AutocastScope autocast(device, bf16);
      total += byte_loss(model->forward(x), x, offset);
    }
    model->train();
    return total.item<double>() / opt.eval_batches / std::log(2.0);
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
  BatchLoader loader(corpus, Split::Train, opt.seed, opt.batch, T, uint64_t(start_step + 1) * opt.accum, device);
  double loss_logged = NAN;  // host copies, refreshed on logging steps only
  int exit_code = 0;
  bool finished = false;

  for (int64_t step = start_step + 1; step <= opt.steps; ++step) {
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
      json v{{"step", step}, {"val_bpb", last_val}, {"elapsed_s", std::chrono::duration<double>(Clock::now() - t_start).count()}};
      metrics << v.dump() << "\n" << std::flush;
      if (!tty) std::fprintf(stderr, "step %lld: val bpb %.4f\n", (long long)step, last_val);
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
        json m{{"step", step}, {"loss", loss_sum}, {"bpb", loss_sum / std::log(2.0)}, {"lr", lr},
               {"grad_norm", grad_norm}, {"bytes_per_s", bps}, {"flops_per_s", bps * train_flops_per_byte},
               {"mfu", bps * train_flops_per_byte / peak}, {"elapsed_s", elapsed}};
        metrics << m.dump() << "\n" << std::flush;
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
        std::fprintf(stderr, "\r[%s] %lld/%lld loss %.3f bpb %.3f val %.3f %sB/s eta %s   ", bar.c_str(),
                     (long long)step, (long long)opt.steps, loss_logged, loss_logged / std::log(2.0), last_val,
                     format_rate(bps).c_str(), format_duration(eta).c_str());
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
  std::signal(SIGINT, old_handler);
  if (finished && std::isnan(last_val))
    std::fprintf(stderr, "bytelm: done (no validation split); checkpoint in %s\n", opt.out.c_str());
  else if (finished)
    std::fprintf(stderr, "bytelm: done; validation bpb %.4f; checkpoint in %s\n", last_val, opt.out.c_str());
  return exit_code;
}

}  // namespace bytelm
