// bench.cpp — `bytelm bench`: the flags of the speed and memory measurements (src/bench/bench.h).
#include <memory>

#include "bench/bench.h"
#include "cli/commands.h"

namespace bytelm::cli {

Command add_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  auto* b = app.add_subcommand("bench", "Measure matmul peak, training and generation speed, memory");
  b->add_option("--configs", o->configs, "Config files or presets to measure")->expected(1, -1);
  b->add_option("--batch", o->batch, "Training batch (0 = 4 on CPU; on CUDA 8, BLT 4)");
  b->add_option("--steps", o->steps, "Timed training steps, each timed alone (after --warmup untimed steps)");
  b->add_option("--warmup", o->warmup, "Untimed training steps first (first-touch page faults, caches, kernel choice)");
  b->add_option("--repeat", o->repeat, "Timed runs of each generation case (the matmul peak takes at least 5)");
  b->add_option("--gen-bytes", o->gen_bytes, "Bytes generated at batch 1");
  b->add_option("--peak-n", o->peak_n, "Matrix size of the matmul peak measurement");
  b->add_flag("--skip-train", o->skip_train, "Do not measure training");
  b->add_flag("--skip-generate", o->skip_generate, "Do not measure generation");
  add_inference_flags(b, o.get(), kAllInferenceFlags, "CPU threads for training (0 = all cores)");
  b->add_option("--gen-batch", o->gen_batch, "Also time generation of this many prompts at once (0 = off)");
  b->add_option("--max-context", o->max_context,
                "MEGABYTE: double the context at batch 1 up to this while a training step fits (0 = off)");
  b->add_option("--gen-threads", o->gen_threads, "CPU threads for batch-1 generation (0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  b->add_option("--json-out", o->json_out, "Also append the JSON lines to this file");
  b->add_option("--uncached", o->uncached, "BLT configs whose --no-cache generation is also timed (slow)")
      ->expected(0, -1);
  b->add_option("--entropy-model", o->entropy_model, "With --data: mean bytes per patch of this entropy model");
  b->add_option("--data", o->data, "Corpus for --entropy-model (its validation split, up to 256 KiB)")->expected(1, -1);
  auto* target = b->add_option("--spec-target", o->spec_target,
                               "Speculative decoding instead of the configs: this trained checkpoint is the target");
  b->add_option("--spec-draft", o->spec_draft, "With --spec-target: the draft's checkpoint, or self (BLT)")
      ->needs(target);
  b->add_option("--spec-k", o->spec_k, "With --spec-target: the --draft-max values measured")
      ->expected(1, -1)
      ->needs(target);
  b->add_option("--spec-p-min", o->spec_p_min, "With --spec-target: --draft-p-min")->needs(target);
  b->add_option("--spec-temperature", o->spec_temperature, "With --spec-target: sampling temperature (0 = greedy)")
      ->needs(target);
  b->add_option("--spec-prompt", o->spec_prompt, "With --spec-target: the prompt")->needs(target);
  return {b, [o] { return run_bench(*o); }};
}

}  // namespace bytelm::cli
