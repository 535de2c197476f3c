// trainer.cpp — the training loop (see trainer.h), in named steps: resolve the options (fresh or resumed
// run), set the run up (config, corpus, model, optimiser, checkpoint), then loop over steps (train, validate,
// log, checkpoint) until done, interrupted or out of memory.
#include "train/trainer.h"

#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "data/corpus.h"
#include "distributed/data_parallel.h"
#include "distributed/zero_adamw.h"
#include "eval/evaluate.h"
#include "eval/token_evaluate.h"
#include "io/atomic_file.h"
#include "model/checkpoint.h"
#include "model/factory.h"
#include "optim/adamw.h"
#include "train/loader.h"
#include "train/memory_check.h"
#include "train/progress.h"
#include "train/run_dir.h"
#include "train/token_training.h"
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

// Linear warmup, then cosine decay to lr * min_lr_ratio at the last step. Steps count from 1.
double lr_at(const TrainOptions& o, int64_t step) {
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
    std::fprintf(stderr,
                 "bytelm: warning: %.2f bytes per patch is almost byte-level, so BLT saves little compute; "
                 "train the entropy model longer or set --bytes-per-patch (e.g. 4.5)\n",
                 mean);
  else if (mean > 16.0)
    std::fprintf(stderr,
                 "bytelm: warning: %.2f bytes per patch is very coarse; the local models must predict "
                 "long patches (lower --bytes-per-patch)\n",
                 mean);
}

// The command line, or on --resume the stored run merged with it (at this world size); checked. Workers that
// torchrun restarted (TORCHELASTIC_RESTART_COUNT > 0) resume the run in --out on their own.
TrainOptions resolve_options(const TrainOptions& given, const DistEnv& env, json* record, int64_t* start_step) {
  if (given.out.empty()) throw Error("--out is required");
  TrainOptions cli = given;
  std::error_code ec;
  if (!cli.resume && env.restart_count > 0 && std::filesystem::exists(cli.out + "/trainer.json", ec)) {
    cli.resume = true;
    if (env.rank == 0)
      std::fprintf(stderr, "bytelm: restart %d of the workers: resuming %s from its last checkpoint\n",
                   env.restart_count, cli.out.c_str());
  }
  TrainOptions opt = cli;
  if (cli.resume) {
    *record = read_run_record(cli.out, start_step);
    adapt_record_to_world(*record, env.world_size);
    opt = merge_resume(cli, *record, *start_step);
  } else {
    if (opt.model.empty()) throw Error("--model is required (transformer | megabyte | entropy | blt | bpe)");
    if (opt.config.empty()) opt.config = default_preset(opt.model);
    if (std::filesystem::exists(cli.out + "/trainer.json", ec))
      throw Error(cli.out + ": already holds a training run; use --resume to continue it or another --out");
  }
  check_train_options(opt);
  if (opt.data.empty()) throw Error("--data is required");
  if (!opt.entropy_model.empty() && opt.model != "blt" && !cli.resume)
    throw Error("--entropy-model is for --model blt");
  if (opt.bytes_per_patch > 0 && opt.model != "blt" && !cli.resume) throw Error("--bytes-per-patch is for --model blt");
  if (!opt.tokenizer.empty() && opt.model != "bpe" && !cli.resume) throw Error("--tokenizer is for --model bpe");
  return opt;
}

// Everything one run holds.
struct Run {
  TrainOptions opt;
  json record;             // the stored run on --resume
  int64_t start_step = 0;  // the checkpoint's step (0 for a new run)
  torch::Device device{torch::kCPU};
  bool bf16 = false;
  ModelConfig cfg;
  std::unique_ptr<FreshOutDir> fresh_dir;  // a new run's directory until its first checkpoint
  std::unique_ptr<Corpus> corpus;
  std::unique_ptr<Tokenizer> tokenizer;  // bpe: the subword tokenizer, saved with every checkpoint
  std::unique_ptr<TokenCorpus> tokens;   // bpe: the splits in tokens
  LanguageModel model;
  DataParallel* dist = nullptr;     // the data-parallel hooks (no-ops in a single process)
  std::unique_ptr<AdamW> adam;      // the optimiser, or with --shard-optimizer:
  std::unique_ptr<ZeroAdamW> zero;  // ZeRO-1, its moments sharded across ranks
  double train_flops_per_byte = 0;  // 3 x forward (the papers' accounting)
  double peak = 0;                  // the MFU denominator
};

// The config: a new run's from --config, a resumed run's from its config.json (a given --model/--config
// must agree with it).
ModelConfig run_config(const Run& run, const TrainOptions& cli) {
  const TrainOptions& opt = run.opt;
  if (!opt.resume) return load_config(opt.config, opt.model);
  ModelConfig cfg = load_checkpoint_config(opt.out);
  if (opt.given.count("model") && cfg.model != cli.model)
    throw Error("--model " + cli.model + " differs from the run's " + cfg.model + " (" + opt.out + ")");
  if (opt.given.count("config") && load_config(cli.config, cfg.model).to_json() != cfg.to_json())
    throw Error("--config " + cli.config + " differs from the run's config.json (" + opt.out + ")");
  return cfg;
}

void open_corpus(Run& run) {
  run.corpus = std::make_unique<Corpus>(run.opt.data, run.opt.val_fraction);
  const Corpus& corpus = *run.corpus;
  if (corpus.size(Split::Train) < run.cfg.context)
    throw Error("training split has " + std::to_string(corpus.size(Split::Train)) +
                " bytes, shorter than one window of " + std::to_string(run.cfg.context) + " bytes (context)");
  if (run.opt.resume && run.record.contains("corpus") && run.record["corpus"] != corpus_summary(corpus))
    throw Error("--data: the files changed since the run started (now " + corpus_summary(corpus).dump() + ", was " +
                run.record["corpus"].dump() + "); resuming would not continue the same run");
}

// Token models (bpe): the tokenizer (given, resumed or trained now) and both splits in tokens; FLOPs per byte at the
// training split's bytes per token.
void tokenize_corpus(Run& run) {
  const auto t0 = Clock::now();
  run.tokenizer = std::make_unique<Tokenizer>(run_tokenizer(run.opt, *run.corpus, run.cfg.vocab_size));
  run.tokens = std::make_unique<TokenCorpus>(*run.corpus, *run.tokenizer, std::vector<Split>{Split::Train, Split::Val});
  const TokenCorpus& t = *run.tokens;
  if (t.tokens(Split::Train) < run.cfg.context)
    throw Error("training split has " + std::to_string(t.tokens(Split::Train)) +
                " tokens, shorter than one window of " + std::to_string(run.cfg.context) + " tokens (context)");
  run.model->set_bytes_per_position(t.bytes_per_token(Split::Train));
  std::fprintf(stderr, "bytelm: %lld train / %lld val tokens, %.3f bytes per token on the training split (%.1fs)\n",
               (long long)t.tokens(Split::Train), (long long)t.tokens(Split::Val), t.bytes_per_token(Split::Train),
               std::chrono::duration<double>(Clock::now() - t0).count());
}

// BLT: the threshold that gives --bytes-per-patch on 8 windows of the training split (as `bytelm patch`).
void calibrate_patching(Run& run) {
  const int64_t rows = 8, T = run.cfg.context;
  std::vector<uint8_t> buf(size_t(rows * T));
  run.corpus->sample(Split::Train, uint64_t(run.opt.seed) ^ 0xca1b, 0, rows, T, buf.data());
  const double th = run.model->calibrate_patching(to_tensor(buf, rows, T, run.device), run.opt.bytes_per_patch);
  run.cfg = run.model->config();
  std::fprintf(stderr, "bytelm: entropy threshold %.4f nats gives %.2f bytes per patch on the training data\n", th,
               run.opt.bytes_per_patch);
}

void build_model(Run& run) {
  const TrainOptions& opt = run.opt;
  torch::manual_seed(uint64_t(opt.seed));
  run.model = make_model(run.cfg);
  LanguageModelImpl& model = *run.model;
  if (!opt.resume && model.runs_entropy_model() && opt.entropy_model.empty())
    throw Error("BLT with entropy patching needs --entropy-model DIR (train one with --model entropy)");
  if (!run.device.is_cuda())
    check_training_memory({model.activation_floats_per_byte(), run.cfg.context, model.num_params()}, opt.batch);
  // --entropy-model and --bytes-per-patch are refused for models without a patcher (check_options).
  if (!opt.resume && !opt.entropy_model.empty()) model.attach_entropy_model(*load_model(opt.entropy_model));
  model.to(run.device);
  if (!opt.resume && opt.bytes_per_patch > 0) calibrate_patching(run);
  const AdamWOptions adam_options{opt.beta1, opt.beta2, opt.adam_eps, opt.weight_decay};
  if (opt.shard_optimizer && run.dist->active())
    run.zero = std::make_unique<ZeroAdamW>(trainable_parameters_of(*run.model), adam_options, *run.dist->group());
  else
    run.adam = std::make_unique<AdamW>(trainable_parameters_of(*run.model), adam_options);
}

// The optimiser's step count, step (clip, update, drop the gradients) and whole state (a collective with ZeRO-1).
int64_t optimizer_t(const Run& run) { return run.zero ? run.zero->t() : run.adam->t(); }
torch::Tensor optimizer_step(Run& run, double lr) {
  return run.zero ? run.zero->clip_step_and_clear(lr, run.opt.clip) : run.adam->clip_step_and_clear(lr, run.opt.clip);
}
NamedTensors optimizer_state(Run& run) { return run.zero ? run.zero->gather_state() : run.adam->state(); }

// --resume: weights and optimiser state from the checkpoint, which must agree on its step.
void restore_checkpoint(Run& run) {
  const std::string& out = run.opt.out;
  auto meta = load_tensors_into(out + "/model.safetensors", named_parameters_of(*run.model));
  auto ometa = run.zero ? run.zero->load_state(out + "/optimizer.safetensors")
                        : load_tensors_into(out + "/optimizer.safetensors", run.adam->state());
  if (meta["step"] != std::to_string(run.start_step) || ometa["step"] != std::to_string(run.start_step))
    throw Error(out + ": model, optimizer and trainer.json are from different steps; checkpoint is inconsistent");
  if (run.zero)
    run.zero->set_t(run.start_step);
  else
    run.adam->set_t(run.start_step);
}

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

// Model, optimiser and the run record, each written atomically; the record is always complete. Data-parallel:
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
      warn_if_useless_patches(patch, run.cfg.patching.mode);
    }
    torch::Tensor loss;
    {
      AutocastScope autocast(run.device, run.bf16);
      loss = byte_loss(run.model->forward(x), x, offset) / double(accum);
    }
    loss.backward();
    loss_sum = micro == 0 ? loss.detach() : loss_sum + loss.detach();
  }
  return loss_sum;
}

// The step loop. Returns the exit code: 0 done or stopped by --exit-after, 130 interrupted (after saving).
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
    bool interrupted = g_interrupted;
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
    if (!std::isnan(bytes_per_patch)) run.train_flops_per_byte = 3 * run.model->forward_flops_per_byte();
    // Loss and gradient norm stay on the device; reading them (a synchronisation) happens on logged steps only.
    progress.stepped(step, log, last || stop_now, log ? loss.item<double>() * loss_per_byte : NAN,
                     log ? grad_norm.item<double>() : NAN, lr, bytes_per_patch);
    if ((opt.ckpt_every > 0 && step % opt.ckpt_every == 0) || last || stop_now) save_checkpoint(run, step);
    if (stop_now && !last) {
      if (dist.is_root())
        std::fprintf(stderr, "bytelm: stopped at step %lld; checkpoint saved to %s (continue with --resume)\n",
                     (long long)step, opt.out.c_str());
      return interrupted ? 130 : 0;
    }
  }
  if (!dist.is_root()) return 0;
  if (std::isnan(progress.last_val()))
    std::fprintf(stderr, "bytelm: done (no validation split); checkpoint in %s\n", opt.out.c_str());
  else
    std::fprintf(stderr, "bytelm: done; validation bpb %.4f; checkpoint in %s\n", progress.last_val(), opt.out.c_str());
  return 0;
}

// What every rank must agree on before training together, as named hashes (DataParallel::agree_on_start):
// the settings that decide the computation (data paths excluded: hosts may mount the corpus elsewhere), the
// model's config and parameter shapes, the data (size, files, and bytes sampled across the training split)
// and the step the run starts from.
std::vector<std::pair<std::string, uint64_t>> start_settings(const Run& run) {
  json options = train_record(run.opt);
  options.erase("data");
  options["shard_optimizer"] = run.opt.shard_optimizer;
  std::string model = run.cfg.to_json().dump();
  for (const auto& [name, p] : named_parameters_of(*run.model)) model += ";" + name + c10::str(p.sizes());
  std::string data = corpus_summary(*run.corpus).dump();
  const int64_t len = std::min<int64_t>(64, run.corpus->size(Split::Train));
  std::vector<uint8_t> sample(size_t(16 * len));
  run.corpus->sample(Split::Train, 0xda7a, 0, 16, len, sample.data());
  data.append(sample.begin(), sample.end());
  if (run.tokens) data += std::to_string(run.tokens->tokens(Split::Train));
  return {{"options", settings_hash(options.dump())},
          {"model configs", settings_hash(model)},
          {"data", settings_hash(data)},
          {"checkpoint steps", uint64_t(run.start_step)}};
}

// The device a rank trains on: --device as given, except that data-parallel CUDA ranks each take their own
// GPU, cuda:LOCAL_RANK (as torchrun users expect); naming one index for all ranks is refused.
torch::Device train_device(const std::string& name, const DistEnv& env) {
  check_device(name);
  torch::Device device(name);
  if (!env.distributed() || !device.is_cuda()) return device;
  if (device.has_index())
    throw Error("--device " + name + ": under a launcher each rank uses cuda:LOCAL_RANK; pass --device cuda");
  if (env.local_rank >= int(torch::cuda::device_count()))
    throw Error("--device cuda: LOCAL_RANK " + std::to_string(env.local_rank) + " but only " +
                std::to_string(torch::cuda::device_count()) + " GPU(s) visible (one rank per GPU)");
  return torch::Device(torch::kCUDA, c10::DeviceIndex(env.local_rank));
}

// Everything before the first step: options, threads, config, corpus, model, optimiser, checkpoint.
void set_up(Run& run, const TrainOptions& cli, const DistEnv& env) {
  run.opt = resolve_options(cli, env, &run.record, &run.start_step);
  const TrainOptions& opt = run.opt;
  run.bf16 = use_bf16(opt.precision, opt.device);
  // Ranks that share a host share its cores unless --threads says otherwise.
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  setup_threads(opt.threads > 0 ? opt.threads : std::max(1, cores / std::max(1, env.local_world_size)));
  run.device = train_device(opt.device, env);
  run.cfg = run_config(run, cli);
  if (!opt.resume && env.rank == 0) run.fresh_dir = std::make_unique<FreshOutDir>(opt.out);
  open_corpus(run);
  build_model(run);
  if (run.model->reads_tokens()) tokenize_corpus(run);
  if (opt.resume) restore_checkpoint(run);
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

  g_interrupted = false;
  auto old_handler = std::signal(SIGINT, on_sigint);
  try {
    const int code = train_loop(run);
    std::signal(SIGINT, old_handler);
    return code;
  } catch (const std::exception& e) {
    // Allocation failures are the user's to fix (batch, context, device): one line, exit 1. The last
    // checkpoint stays as it was (every file is written atomically).
    std::signal(SIGINT, old_handler);
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
