// run_setup.cpp — a training run's set-up (see run_state.h): the options of a fresh or resumed run, its
// config, corpus (and tokens for token models), model, optimiser and restored checkpoint.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "model/checkpoint.h"
#include "model/factory.h"
#include "train/memory_check.h"
#include "train/run_state.h"
#include "train/token_training.h"
#include "util/device.h"
#include "util/error.h"
#include "util/platform.h"

namespace bytelm {

namespace {

using Clock = std::chrono::steady_clock;

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
  const NamedTensors params = trainable_parameters_of(*run.model);
  std::vector<double> lr_scales;  // per parameter, from the model (H-Net's per-stage multipliers)
  for (const auto& [name, p] : params) lr_scales.push_back(run.model->lr_multiplier(name));
  if (opt.shard_optimizer && run.dist->active())
    run.zero = std::make_unique<ZeroAdamW>(params, adam_options, *run.dist->group(), lr_scales);
  else
    run.adam = std::make_unique<AdamW>(params, adam_options, lr_scales);
}

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

}  // namespace

torch::Tensor to_tensor(const std::vector<uint8_t>& buf, int64_t rows, int64_t cols, const torch::Device& device) {
  auto t = torch::from_blob(const_cast<uint8_t*>(buf.data()), {rows, cols}, torch::kUInt8).to(torch::kLong);
  return t.to(device);
}

// The corpus a run trains on, summarised in its record; on resume the data must not have changed.
json corpus_summary(const Corpus& corpus) {
  return json{{"bytes", corpus.size(Split::All)}, {"files", corpus.num_files()}};
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

}  // namespace bytelm
