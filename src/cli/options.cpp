// options.cpp — the flags every subcommand shares (see commands.h).
#include "cli/commands.h"

#include "model/config.h"

namespace bytelm::cli {

void add_inference_flags(CLI::App* sub, InferenceSettings* s, unsigned which, const std::string& threads_help) {
  if (which & kDevice) sub->add_option("--device", s->device, "cpu | cuda | cuda:N");
  if (which & kPrecision)
    sub->add_option("--precision", s->precision,
                    "fp32 | bf16 (autocast: fp32 weights and optimizer state) | auto = bf16 on CUDA");
  if (which & kDecode)
    sub->add_option(
        "--decode", s->decode,
        "Per-byte generation steps: auto (CUDA graphs on CUDA) | graphs | static (fixed shapes, eager) | dynamic");
  if (which & kDecodeWeights)
    sub->add_option("--decode-weights", s->decode_weights,
                    "Weights of single-row CPU decoding: fp32 | bf16 (a bf16 copy of each weight, fp32 arithmetic: "
                    "about twice the bytes/s where memory bandwidth bounds a step; outputs differ from fp32 by bf16 "
                    "rounding)");
  if (which & kThreads) sub->add_option("--threads", s->threads, threads_help)->check(CLI::NonNegativeNumber);
}

std::set<std::string> given_options(const CLI::App* sub) {
  std::set<std::string> names;
  for (const CLI::Option* o : sub->get_options())
    if (o->count() > 0 && !o->get_lnames().empty()) names.insert(o->get_lnames()[0]);
  return names;
}

const std::string& presets_footer() {
  static const std::string table = presets_table();
  return table;
}

void add_draft_flags(CLI::App* sub, std::string* draft, SpeculativeOptions* spec, const std::string& what) {
  auto* d = sub->add_option("--draft", *draft,
                            "Speculative decoding: a byte-model checkpoint drafts bytes the model checks, or \"self\" "
                            "for a BLT's own entropy model; " +
                                what);
  sub->add_option("--draft-max", spec->draft_max, "With --draft: most bytes drafted per round")->needs(d);
  sub->add_option("--draft-p-min", spec->draft_p_min,
                  "With --draft: stop drafting when the draft's top probability is below this (0 = never)")
      ->needs(d);
}

}  // namespace bytelm::cli
