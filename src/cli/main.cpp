// main.cpp — the bytelm command-line tool: a thin layer over the library. Every subcommand's --help
// lists every option with its default. Bad input: one line "bytelm: error: ..." and exit code 2.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "io/atomic_file.h"
#include "model/config.h"
#include "train/bench.h"
#include "train/evaluate.h"
#include "train/info.h"
#include "train/patching.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/blas_core.h"
#include "util/memory.h"

namespace {

int fail(const std::string& msg, int code) {
  // One line only: drop anything after the first newline (e.g. a LibTorch backtrace).
  std::string line = msg.substr(0, msg.find('\n'));
  std::fprintf(stderr, "bytelm: error: %s\n", line.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  bytelm::use_better_openblas_core(argv);  // OpenBLAS's own choice can be SSE3 on new CPUs (util/blas_core.h)
  // libgomp reads OMP_WAIT_POLICY when it loads, before main. Its default (spinning) makes LibTorch's
  // OpenMP threads fight OpenBLAS's own threads on a 2-core machine: measured 1.2-2.5x slower training
  // and generation. So, unless the user chose a policy, set PASSIVE and re-execute ourselves once.
  if (!std::getenv("OMP_WAIT_POLICY")) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);  // returns only on failure; then carry on as we are
  }
  bytelm::configure_allocator();  // malloc keeps freed tensor memory for reuse (see util/memory.h)
  CLI::App app{"bytelm: tokenizer-free language models on raw bytes (byte Transformer, MEGABYTE, BLT)"};
  app.option_defaults()->always_capture_default();
  app.require_subcommand(1);
  app.fallthrough(false);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");

  bytelm::TrainOptions train;
  auto* t = app.add_subcommand("train", "Train a model on raw bytes");
  t->add_option("--model", train.model, "Model: transformer | megabyte | entropy | blt")
      ->check(CLI::IsMember({"transformer", "megabyte", "entropy", "blt"}));
  t->add_option("--entropy-model", train.entropy_model, "BLT: entropy-model checkpoint (trained with --model entropy)");
  t->add_option("--config", train.config, "Config JSON file or preset name (tiny, demo, cpu, s)");
  t->add_option("--data", train.data, "Files or directories of training bytes")->expected(1, -1);
  t->add_option("--out", train.out, "Checkpoint directory (required)");
  t->add_option("--steps", train.steps, "Optimizer steps of the whole run");
  t->add_option("--batch", train.batch, "Sequences per micro-batch");
  t->add_option("--accum", train.accum, "Micro-batches per step (gradient accumulation)");
  t->add_option("--lr", train.lr, "Peak learning rate");
  t->add_option("--min-lr-ratio", train.min_lr_ratio, "Final learning rate as a fraction of --lr (cosine decay)");
  t->add_option("--warmup", train.warmup, "Linear warmup steps");
  t->add_option("--weight-decay", train.weight_decay, "AdamW weight decay (not on norms, embeddings, pads)");
  t->add_option("--beta1", train.beta1, "AdamW beta1");
  t->add_option("--beta2", train.beta2, "AdamW beta2");
  t->add_option("--adam-eps", train.adam_eps, "AdamW epsilon");
  t->add_option("--clip", train.clip, "Gradient-norm clip (0 = off)");
  t->add_option("--seed", train.seed, "Seed for initialisation and data order");
  t->add_option("--val-fraction", train.val_fraction, "Fraction at the tail of each file held out for validation");
  t->add_option("--eval-every", train.eval_every, "Validation every N steps (0 = at the end only)");
  t->add_option("--eval-batches", train.eval_batches, "Batches per validation");
  t->add_option("--ckpt-every", train.ckpt_every, "Checkpoint every N steps (0 = at the end only)");
  t->add_option("--log-every", train.log_every, "Metrics line every N steps");
  t->add_option("--exit-after", train.exit_after, "Stop after this step with a checkpoint, as on Ctrl-C (0 = off)");
  t->add_flag("--resume", train.resume, "Continue the run in --out from its last checkpoint");
  t->add_option("--device", train.device, "cpu | cuda | cuda:N");
  t->add_option("--precision", train.precision, "fp32 | bf16 (autocast; fp32 weights and optimizer) | auto = bf16 on CUDA");
  t->add_option("--threads", train.threads, "CPU threads (0 = all cores)");
  t->add_option("--peak-flops", train.peak_flops, "Peak FLOP/s for MFU (0 = measure a matmul at start)");

  bytelm::EvalOptions ev;
  auto* e = app.add_subcommand("eval", "Bits per byte of a checkpoint over whole files");
  e->add_option("--ckpt", ev.ckpt, "Checkpoint directory (required)");
  e->add_option("--data", ev.data, "Files or directories to score (required)")->expected(1, -1);
  e->add_option("--batch", ev.batch, "Context windows per forward pass");
  e->add_flag("--json", ev.json, "Print one JSON object instead of text");
  e->add_option("--device", ev.device, "cpu | cuda | cuda:N");
  e->add_option("--precision", ev.precision, "fp32 | bf16 (autocast) | auto = bf16 on CUDA");
  e->add_option("--threads", ev.threads, "CPU threads (0 = all cores)");

  bytelm::GenerateOptions gen;
  std::string prompt_file;
  auto* g = app.add_subcommand("generate", "Sample bytes from a checkpoint, streamed to stdout");
  g->add_option("--ckpt", gen.ckpt, "Checkpoint directory (required)");
  auto* po = g->add_option("--prompt", gen.prompt, "Prompt text");
  auto* pf = g->add_option("--prompt-file", prompt_file, "Read the prompt bytes from this file")->excludes(po);
  g->add_option("--prompts-file", gen.prompts_file,
                "Many prompts, one per line: generated --batch at a time, printed as JSON lines")
      ->excludes(po)
      ->excludes(pf);
  g->add_option("--batch", gen.batch, "With --prompts-file: prompts decoded together in one batch");
  g->add_option("--max-bytes", gen.max_bytes, "Bytes to generate");
  g->add_option("--temperature", gen.temperature, "Sampling temperature (0 = greedy)");
  g->add_option("--top-k", gen.top_k, "Keep the k most likely bytes (0 = off)");
  g->add_option("--top-p", gen.top_p, "Nucleus sampling mass (1 = off)");
  g->add_option("--seed", gen.seed, "Sampling seed");
  g->add_option("--stop", gen.stop, "Stop once the output ends with this string (it is printed)");
  g->add_flag("--no-cache", gen.no_cache, "Recompute the whole window for every byte (slow reference path)");
  g->add_option("--device", gen.device, "cpu | cuda | cuda:N");
  g->add_option("--precision", gen.precision, "fp32 | bf16 (autocast) | auto = bf16 on CUDA");
  g->add_option("--decode", gen.decode,
                "Per-byte steps: auto (CUDA graphs on CUDA) | graphs | static (fixed shapes, eager) | dynamic");
  g->add_option("--threads", gen.threads, "CPU threads (0 = all cores; batch-1 decoding is fastest on 1)");

  bytelm::InfoOptions info;
  auto* i = app.add_subcommand("info", "Parameters and FLOPs per byte, split by part");
  auto* ic = i->add_option("--ckpt", info.ckpt, "Checkpoint directory");
  i->add_option("--config", info.config, "Config JSON file or preset name")->excludes(ic);
  i->add_option("--model", info.model, "Model for a preset name: transformer | megabyte | entropy | blt");
  i->add_option("--data", info.data, "BLT: measure the mean patch size on these files (FLOPs depend on it)")->expected(1, -1);
  i->add_flag("--json", info.json, "Print one JSON object instead of text");

  bytelm::PatchOptions patch;
  auto* pa = app.add_subcommand("patch", "Show where an entropy model cuts a file into BLT patches");
  pa->add_option("--entropy-model", patch.entropy_model, "Entropy-model checkpoint, or a BLT checkpoint (its patcher) (required)");
  pa->add_option("file", patch.file, "The file to patch");
  auto* th = pa->add_option("--threshold", patch.threshold, "Entropy threshold in nats (0 = the checkpoint's, else 1.3354)");
  pa->add_option("--bytes-per-patch", patch.bytes_per_patch, "Find the threshold for this mean patch size (bisection)")->excludes(th);
  pa->add_option("--max-patch-length", patch.max_patch_length, "Split longer patches (0 = none)");
  pa->add_flag("--json", patch.json, "Print entropies and boundaries as JSON");
  pa->add_option("--device", patch.device, "cpu | cuda | cuda:N");
  pa->add_option("--threads", patch.threads, "CPU threads (0 = all cores)");

  bytelm::BenchOptions bench;
  auto* b = app.add_subcommand("bench", "Measure matmul peak, training and generation speed, memory");
  b->add_option("--configs", bench.configs, "Config files or presets to measure")->expected(1, -1);
  b->add_option("--batch", bench.batch, "Training batch (0 = 4 on CPU; on CUDA 8, BLT 4)");
  b->add_option("--steps", bench.steps, "Timed training steps (after one warm-up step)");
  b->add_option("--gen-bytes", bench.gen_bytes, "Bytes generated at batch 1");
  b->add_option("--peak-n", bench.peak_n, "Matrix size of the matmul peak measurement");
  b->add_flag("--skip-train", bench.skip_train, "Do not measure training");
  b->add_flag("--skip-generate", bench.skip_generate, "Do not measure generation");
  b->add_option("--device", bench.device, "cpu | cuda | cuda:N");
  b->add_option("--precision", bench.precision, "fp32 | bf16 (autocast) | auto = bf16 on CUDA");
  b->add_option("--decode", bench.decode, "Generation steps: auto (CUDA graphs on CUDA) | graphs | static | dynamic");
  b->add_option("--gen-batch", bench.gen_batch, "Also time generation of this many prompts at once (0 = off)");
  b->add_option("--max-context", bench.max_context,
                "MEGABYTE: double the context at batch 1 up to this while a training step fits (0 = off)");
  b->add_option("--threads", bench.threads, "CPU threads for training (0 = all cores)");
  b->add_option("--gen-threads", bench.gen_threads, "CPU threads for batch-1 generation (0 = all cores)");
  b->add_option("--json-out", bench.json_out, "Also append the JSON lines to this file");
  b->add_option("--uncached", bench.uncached, "BLT configs whose --no-cache generation is also timed (slow)")->expected(0, -1);
  b->add_option("--entropy-model", bench.entropy_model, "With --data: mean bytes per patch of this entropy model");
  b->add_option("--data", bench.data, "Corpus for --entropy-model (its validation split, up to 256 KiB)")->expected(1, -1);

  // CLI11 would report a missing subcommand before an unknown word; name the unknown word instead.
  bool known = false;
  for (const auto* sub : app.get_subcommands({})) known = known || (argc > 1 && sub->get_name() == argv[1]);
  if (argc > 1 && argv[1][0] != '-' && !known)
    return fail(std::string("unknown subcommand '") + argv[1] + "' (see --help)", 2);
  // Required options are checked by the library after parsing, so an unknown flag is reported first.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& err) {
    if (err.get_exit_code() == 0) return app.exit(err);  // --help
    return fail(std::string(err.what()) + " (see --help)", 2);
  }

  try {
    if (*t) return bytelm::run_train(train);
    if (*e) {
      if (ev.ckpt.empty()) throw bytelm::Error("--ckpt is required");
      return bytelm::run_eval(ev);
    }
    if (*g) {
      if (gen.ckpt.empty()) throw bytelm::Error("--ckpt is required");
      if (!prompt_file.empty()) gen.prompt = bytelm::read_file(prompt_file);
      return bytelm::run_generate(gen);
    }
    if (*i) {
      if (info.ckpt.empty() && info.config.empty()) throw bytelm::Error("info needs --ckpt or --config");
      return bytelm::run_info(info);
    }
    if (*b) return bytelm::run_bench(bench);
    if (*pa) {
      if (patch.entropy_model.empty()) throw bytelm::Error("--entropy-model is required");
      return bytelm::run_patch(patch);
    }
  } catch (const bytelm::Error& err) {
    return fail(err.what(), 2);
  } catch (const std::exception& err) {
    return fail(std::string("internal error: ") + err.what(), 1);
  }
  return 0;
}
