// train.cpp — `bytelm train`: the flags of a training run (see src/train/train_options.h for what each
// decides and what --resume keeps).
#include <memory>

#include "cli/commands.h"
#include "train/trainer.h"

namespace bytelm::cli {

Command add_train(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  auto* t = app.add_subcommand("train", "Train a model on raw bytes");
  t->add_option("--model", o->model, "Model: transformer | megabyte | entropy | blt | bpe (subword baseline) | hnet")
      ->check(CLI::IsMember({"transformer", "megabyte", "entropy", "blt", "bpe", "hnet"}));
  t->add_option(
      "--tokenizer", o->tokenizer,
      "bpe: tokenizer directory or .model file (`bytelm tokenizer train`; default: train one on the training split)");
  t->add_option("--tokenizer-type", o->tokenizer_type, "bpe: the tokenizer trained when no --tokenizer: bpe | unigram")
      ->check(CLI::IsMember({"bpe", "unigram"}));
  t->add_option("--entropy-model", o->entropy_model, "BLT: entropy-model checkpoint (trained with --model entropy)");
  t->add_option("--config", o->config,
                "Config JSON file or preset name (default: the model's demo preset; list below)");
  t->add_option("--data", o->data, "Files or directories of training bytes")->expected(1, -1);
  t->add_option("--out", o->out, "Run directory: checkpoints, metrics.jsonl, trainer.json (required)");
  t->add_option(
      "--bytes-per-patch", o->bytes_per_patch,
      "BLT: calibrate the entropy threshold on the training data for this mean patch size (0 = the config's)");
  t->add_option("--steps", o->steps, "Optimizer steps of the whole run (on --resume: the run's, or more to extend it)");
  t->add_option("--batch", o->batch, "Sequences per micro-batch");
  t->add_option("--accum", o->accum, "Micro-batches per step (gradient accumulation)");
  t->add_option("--lr", o->lr, "Peak learning rate");
  t->add_option("--min-lr-ratio", o->min_lr_ratio, "Final learning rate as a fraction of --lr (cosine decay)");
  t->add_option("--warmup", o->warmup, "Linear warmup steps");
  t->add_option("--weight-decay", o->weight_decay, "AdamW weight decay (not on norms, embeddings, pads)");
  t->add_option("--beta1", o->beta1, "AdamW beta1");
  t->add_option("--beta2", o->beta2, "AdamW beta2");
  t->add_option("--adam-eps", o->adam_eps, "AdamW epsilon");
  t->add_option("--clip", o->clip, "Gradient-norm clip (0 = off)");
  t->add_option("--seed", o->seed, "Seed for initialisation and data order")->check(CLI::NonNegativeNumber);
  t->add_option("--val-fraction", o->val_fraction, "Fraction at the tail of each file held out for validation");
  t->add_option("--eval-every", o->eval_every, "Validation every N steps (0 = at the end only)");
  t->add_option("--eval-batches", o->eval_batches, "Batches per validation");
  t->add_option("--ckpt-every", o->ckpt_every, "Checkpoint every N steps (0 = at the end only)");
  t->add_option("--log-every", o->log_every, "Metrics line every N steps");
  t->add_option("--exit-after", o->exit_after, "Stop after this step with a checkpoint, as on Ctrl-C (0 = off)");
  t->add_flag("--resume", o->resume,
              "Continue the run in --out from its last checkpoint with its stored settings (only --out needed)");
  add_inference_flags(t, o.get(), kDeviceFlags,
                      "CPU threads of every pool: LibTorch's OpenMP (MKL included) and inter-op (0 = all cores)");
  t->add_option("--peak-flops", o->peak_flops, "Peak FLOP/s for MFU (0 = measure a matmul at start)");
  t->add_option("--dist-timeout", o->dist_timeout,
                "Data-parallel (under torchrun or RANK/WORLD_SIZE): seconds to wait for a dead or silent peer "
                "before exiting non-zero");
  t->add_flag(
      "--shard-optimizer", o->shard_optimizer,
      "Data-parallel: ZeRO-1, shard AdamW's moments across ranks (optimizer memory per rank / world size; no effect "
      "in one process)");
  t->footer(presets_footer());
  return {t, [o, t] {
            o->given = given_options(t);
            return run_train(*o);
          }};
}

}  // namespace bytelm::cli
