// trainer.cpp — the training loop (see trainer.h): the run is set up (run_setup.cpp: options, config, corpus,
// model, optimiser, checkpoint), then steps loop (train, validate, log, checkpoint) until done, interrupted or
// out of memory.
#include "train/trainer.h"

#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <functional>

#include "eval/evaluate.h"
#include "eval/token_evaluate.h"
#include "io/atomic_file.h"
#include "model/checkpoint.h"
#include "train/loader.h"
#include "train/progress.h"
#include "train/run_state.h"
#include "util/device.h"
#include "util/error.h"
#include "util/platform.h"

namespace bytelm {

namespace {

using Clock = std::chrono::steady_clock;

// SIGINT (Ctrl-C) and SIGTERM (kill, torchrun tearing down, a scheduler's preemption) stop training at the
// end of the step with a checkpoint; the exit code is 128 + the signal (130, 143).
std::atomic<int> g_interrupted{0};
void on_stop_signal(int sig) {
  g_interrupted = sig;
  std::signal(sig, SIG_DFL);  // a second one kills at once
}

// Installs on_stop_signal for SIGINT and SIGTERM while alive; the earlier handlers come back after.
struct StopSignals {
  StopSignals() : int_(std::signal(SIGINT, on_stop_signal)), term_(std::signal(SIGTERM, on_stop_signal)) {
    g_interrupted = 0;
  }
  ~StopSignals() {
    std::signal(SIGINT, int_);
    std::signal(SIGTERM, term_);
  }
  void (*int_)(int);
  void (*term_)(int);
};

// Linear warmup, then cosine decay to lr * min_lr_ratio at the last step. Steps count from 1.
double lr_at(const TrainOptions& o, int64_t step) {
  if (o.warmup > 0 && step <= o.warmup) return o.lr * double(step) / double(o.warmup);
  double span = std::max<int64_t>(1, o.steps - o.warmup);
  double progress = std::min(1.0, double(step - o.warmup) / span);
  double min_lr = o.lr * o.min_lr_ratio;
  return min_lr + 0.5 * (o.lr - min_lr) * (1 + std::cos(M_PI * progress));
}

bool is_out_of_memory(const std::string& msg) {
  for (const char* s : {"can't allocate memory", "out of memory", "Cannot allocate memory", "bad_alloc"})
    if (msg.find(s) != std::string::npos) return true;
  return false;
}

// The model's word on its patches (too fine, too coarse, collapsed), printed when it changes.
void warn_about_patches(Run& run) {
  const std::string warning = run.model->patching_warning();
  if (!warning.empty() && warning != run.patch_warning) std::fprintf(stderr, "bytelm: warning: %s\n", warning.c_str());
  run.patch_warning = warning;
}

// The optimiser's step count, step (clip, update, drop the gradients) and whole state (a collective with ZeRO-1).
int64_t optimizer_t(const Run& run) { return run.zero ? run.zero->t() : run.adam->t(); }
torch::Tensor optimizer_step(Run& run, double lr) {
  return run.zero ? run.zero->clip_step_and_clear(lr, run.opt.clip) : run.adam->clip_step_and_clear(lr, run.opt.clip);
}
NamedTensors optimizer_state(Run& run) { return run.zero ? run.zero->gather_state() : run.adam->state(); }

void print_start(const Run& run) {
  const TrainOptions& opt = run.opt;
  std::fprintf(stderr,
               "bytelm: %s %s, %.2fM parameters, context %lld, batch %lld x %lld, %s; "
               "corpus %s: %lld train / %lld val bytes in %lld files\n",
               opt.resume ? "resuming" : "training", run.cfg.model.c_str(), run.model->num_params() / 1e6,
               (long long)run.cfg.context, (long long)opt.batch, (long long)opt.accum,
               (opt.device + (run.bf16 ? " bf16" : " fp32")).c_str(), opt.data[0].c_str(),
               (long long)run.corpus->size(Split::Train), (long long)run.corpus->size(Split::Val),
               (long long)run.corpus->num_files());
  if (run.dist->active())
    std::fprintf(stderr, "bytelm: data-parallel over %d processes (Gloo, store %s:%d%s): global batch %lld x %lld%s\n",
                 run.dist->world(), run.dist->env().master_addr.c_str(), run.dist->env().master_port,
                 run.dist->env().agent_store ? ", torchrun's" : "", (long long)(opt.batch * run.dist->world()),
                 (long long)opt.accum,
                 run.zero ? (", ZeRO-1: AdamW moments " + std::to_string(run.zero->owned_values()) + " of " +
                             std::to_string(run.zero->total_values()) + " values per rank")
                                .c_str()
                          : "");
  if (opt.warmup > opt.steps)
    std::fprintf(stderr,
                 "bytelm: warning: --warmup %lld is longer than the run (--steps %lld): the learning rate "
                 "never reaches --lr\n",
                 (long long)opt.warmup, (long long)opt.steps);
}

// Model, optimiser and the run record, committed whole (run_dir.h); the record is always complete. Data-parallel:
// rank 0 writes (every replica holds the same weights), then all ranks pass a barrier, so none runs ahead of
// a checkpoint that is not on disk yet.
void save_checkpoint(Run& run, int64_t step) {
  const NamedTensors optimizer = optimizer_state(run);  // gathered from every rank with ZeRO-1
  if (run.dist->is_root()) {
    std::map<std::string, std::string> meta{{"step", std::to_string(step)}};
    const std::string stage = stage_checkpoint(run.opt.out);  // written whole, then committed (run_dir.h)
    save_model(stage, *run.model, meta);
    if (run.tokenizer) run.tokenizer->save(stage + "/" + kTokenizerFile);
    save_tensors(stage + "/optimizer.safetensors", optimizer, meta);
    json record = train_record(run.opt);
    record["corpus"] = corpus_summary(*run.corpus);
    record["world_size"] = run.dist->world();  // --batch is per rank: --resume rescales it to its own world
    record["step"] = step;
    write_file_atomic(stage + "/trainer.json", record.dump(2) + "\n");
    commit_checkpoint(run.opt.out);
    if (run.fresh_dir) run.fresh_dir->keep();
  }
  run.dist->barrier();
}

// One optimiser step over --accum micro-batches -> the summed loss (on the device; read only when logged).
torch::Tensor train_step(Run& run, const std::function<torch::Tensor()>& next_batch, bool first) {
  const int64_t accum = run.opt.accum, offset = run.model->vocab_offset();
  torch::Tensor loss_sum;
  for (int64_t micro = 0; micro < accum; ++micro) {
    auto x = next_batch();  // (B, T) bytes, or token ids for bpe
    if (first && micro == 0 && run.model->dynamic_patches()) {
      // FLOPs per byte depend on the mean patch size: measure it on the first batch.
      const double patch = run.model->count_patches_of(x);
      run.train_flops_per_byte = 3 * run.model->forward_flops_per_byte();
      std::fprintf(stderr, "bytelm: mean patch size %.2f bytes on the first batch\n", patch);
      warn_about_patches(run);
    }
    torch::Tensor loss, objective;  // the next-byte loss (logged), and it plus the model's own (H-Net's ratio loss)
    {
      AutocastScope autocast(run.device, run.bf16);
      loss = byte_loss(run.model->forward(x), x, offset) / double(accum);
      auto extra = run.model->auxiliary_loss();
      objective = extra.defined() ? loss + extra / double(accum) : loss;
    }
    objective.backward();
    loss_sum = micro == 0 ? loss.detach() : loss_sum + loss.detach();
  }
  return loss_sum;
}

// The step loop. Returns the exit code: 0 done or stopped by --exit-after, 130 / 143 stopped by SIGINT / SIGTERM
// (after saving).
int train_loop(Run& run) {
  const TrainOptions& opt = run.opt;
  DataParallel& dist = *run.dist;
  if (dist.is_root() && opt.resume) drop_metrics_after(opt.out + "/metrics.jsonl", run.start_step);
  MetricsFile metrics(dist.is_root() ? opt.out + "/metrics.jsonl" : "");  // rank 0 reports for the group
  // bpe: bytes per window = tokens per window x the training split's bytes per token (throughput in bytes).
  // Data-parallel: every rank trains on its own windows, so the group's throughput counts them all.
  const int64_t window_bytes =
      run.tokens ? std::llround(double(run.cfg.context) * run.tokens->bytes_per_token(Split::Train)) : run.cfg.context;
  Progress progress(opt, window_bytes * dist.world(), run.start_step, &run.train_flops_per_byte, run.peak, metrics);
  if (!dist.is_root()) progress.mute();
  // Rank r trains on rows [r * batch, (r + 1) * batch) of every global batch of world x batch rows.
  const int64_t first_row = int64_t(dist.rank()) * opt.batch;
  run.model->train();
  // Batches for sample indices step * accum + micro: bytes prepared ahead on a background thread; bpe token
  // windows (already in memory) sampled in place.
  std::unique_ptr<BatchLoader> loader;
  if (!run.tokens)
    loader = std::make_unique<BatchLoader>(*run.corpus, Split::Train, uint64_t(opt.seed), opt.batch, run.cfg.context,
                                           uint64_t(run.start_step + 1) * opt.accum, run.device, 2, first_row);
  uint64_t token_batch = uint64_t(run.start_step + 1) * opt.accum;
  std::vector<int64_t> token_buf(size_t(opt.batch * run.cfg.context));
  auto next_batch = [&]() -> torch::Tensor {
    if (loader) return loader->next();
    run.tokens->sample(Split::Train, uint64_t(opt.seed), token_batch++, opt.batch, run.cfg.context, token_buf.data(),
                       first_row);
    return torch::from_blob(token_buf.data(), {opt.batch, run.cfg.context}, torch::kLong).clone().to(run.device);
  };
  // bpe: the logged loss is per byte (token loss / the training split's bytes per token), so its loss and
  // bpb columns compare with byte models'.
  const double loss_per_byte = run.tokens ? 1.0 / run.tokens->bytes_per_token(Split::Train) : 1.0;
  for (int64_t step = run.start_step + 1; step <= opt.steps; ++step) {
    auto loss = train_step(run, next_batch, step == run.start_step + 1);
    dist.reduce_gradients();  // once per optimiser step, after the last micro-batch
    const double lr = lr_at(opt, step);
    auto grad_norm = optimizer_step(run, lr);
    const bool last = step == opt.steps;
    // Data-parallel: the loss is the mean over ranks, and a Ctrl-C on any rank stops all of them at this step.
    bool interrupted = g_interrupted != 0;
    if (dist.active()) {
      auto [mean_loss, any_interrupted] = dist.step_summary(loss.item<double>(), interrupted);
      loss = torch::full({}, mean_loss, torch::kFloat64);
      interrupted = any_interrupted;
    }
    const bool stop_now = interrupted || (opt.exit_after > 0 && step >= opt.exit_after);
    if ((opt.eval_every > 0 && step % opt.eval_every == 0) || last) {
      // Fixed windows of the validation split (`bytelm eval --split val` scores the same ones).
      // Data-parallel: each rank scores its rows of the global validation batch; the result is reduced.
      run.model->eval();
      auto sum_over_ranks = [&](double* nats, double* bytes) {
        *nats = dist.mean(*nats) * dist.world();
        *bytes = dist.mean(*bytes) * dist.world();
      };
      progress.validated(step, run.tokens
                                   ? token_validation_bpb(*run.model, *run.tokens, opt.batch, opt.eval_batches,
                                                          opt.device, run.bf16, first_row, sum_over_ranks)
                                   : dist.mean(validation_bpb(*run.model, *run.corpus, opt.batch, opt.eval_batches,
                                                              opt.device, run.bf16, first_row)));
      run.model->train();
    }
    const bool log = step % opt.log_every == 0 || last || stop_now;
    // Dynamic patches: FLOPs per byte follow the patches the logged interval really made (they vary by batch).
    const double bytes_per_patch = log ? run.model->take_training_patches() : NAN;
    if (!std::isnan(bytes_per_patch)) {
      run.train_flops_per_byte = 3 * run.model->forward_flops_per_byte();
      if (dist.is_root()) warn_about_patches(run);
    }
    // Loss and gradient norm stay on the device; reading them (a synchronisation) happens on logged steps only.
    progress.stepped(step, log, last || stop_now, log ? loss.item<double>() * loss_per_byte : NAN,
                     log ? grad_norm.item<double>() : NAN, lr, bytes_per_patch);
    if ((opt.ckpt_every > 0 && step % opt.ckpt_every == 0) || last || stop_now) save_checkpoint(run, step);
    if (stop_now && !last) {
      if (dist.is_root())
        std::fprintf(stderr, "bytelm: stopped at step %lld; checkpoint saved to %s (continue with --resume)\n",
                     (long long)step, opt.out.c_str());
      if (!interrupted) return 0;
      return 128 + (g_interrupted != 0 ? g_interrupted.load() : SIGINT);  // another rank's signal: as Ctrl-C
    }
  }
  if (!dist.is_root()) return 0;
  if (std::isnan(progress.last_val()))
    std::fprintf(stderr, "bytelm: done (no validation split); checkpoint in %s\n", opt.out.c_str());
  else
    std::fprintf(stderr, "bytelm: done; validation bpb %.4f; checkpoint in %s\n", progress.last_val(), opt.out.c_str());
  return 0;
}

}  // namespace

int run_train(const TrainOptions& cli) {
  // The launcher's environment and the group come first: a rank that then fails to set up still tells the
  // others, so every rank stops with exit 2 instead of waiting for it.
  const DistEnv env = read_dist_env();
  if (!(cli.dist_timeout > 0 && cli.dist_timeout <= 86400)) throw Error("--dist-timeout must be in (0, 86400] seconds");
  // CUDA ranks form an NCCL group on their own device; CPU ranks a Gloo group.
  DataParallel dist(env, cli.dist_timeout,
                    env.distributed() ? train_device(cli.device, env) : torch::Device(torch::kCPU));
  Run run;
  run.dist = &dist;
  try {
    set_up(run, cli, env);
  } catch (...) {
    dist.agree_on_start(true, {});
    throw;
  }
  dist.agree_on_start(false, start_settings(run));
  const TrainOptions& opt = run.opt;
  if (opt.resume && run.start_step >= opt.steps) {
    if (dist.is_root())
      std::fprintf(stderr, "bytelm: %s is already at step %lld of %lld (--steps N extends it)\n", opt.out.c_str(),
                   (long long)run.start_step, (long long)opt.steps);
    return 0;
  }
  // Rank 0's weights everywhere (they agree already when all ranks drew them from the same seed or
  // checkpoint; the broadcast makes it so), then the gradient buckets.
  std::vector<torch::Tensor> weights;
  for (const auto& np : named_parameters_of(*run.model)) weights.push_back(np.second);
  for (const auto& b : run.model->buffers()) weights.push_back(b);
  dist.broadcast_from_root(weights);
  std::vector<torch::Tensor> trainable;
  for (const auto& np : trainable_parameters_of(*run.model)) trainable.push_back(np.second);
  dist.set_parameters(trainable);
  run.train_flops_per_byte = 3 * run.model->forward_flops_per_byte();
  // MFU denominator: --peak-flops, else on CUDA the H100's dense bf16 peak (the yardstick), else a
  // matmul measured now on the CPU (by rank 0 alone, which reports; the others would share its cores).
  run.peak = opt.peak_flops > 0     ? opt.peak_flops
             : run.device.is_cuda() ? kH100DenseBf16Flops
             : dist.is_root()       ? measure_matmul_peak(opt.device, 0, 0.5)
                                    : 1.0;
  if (dist.is_root()) print_start(run);

  StopSignals stop_signals;
  try {
    return train_loop(run);
  } catch (const std::exception& e) {
    // Allocation failures are the user's to fix (batch, context, device): one line, exit 1. The last
    // checkpoint stays as it was (every file is written atomically).
    if (stderr_is_tty()) std::fprintf(stderr, "\n");
    if (!is_out_of_memory(e.what())) throw;
    const int64_t step = optimizer_t(run) + 1;  // the step that was being computed
    const std::string what = e.what();
    throw Error("out of memory at step " + std::to_string(step) + " with --batch " + std::to_string(opt.batch) + ": " +
                    what.substr(0, what.find('\n')),
                1);
  }
}

}  // namespace bytelm
