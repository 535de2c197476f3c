// generate.cpp — `bytelm generate`: a prompt streamed to stdout byte by byte, or a file of prompts decoded in
// batches and printed as JSON lines.
#include <chrono>
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "generate/batch_decoder.h"
#include "generate/generate.h"
#include "generate/generate_tokens.h"
#include "generate/speculative.h"
#include "io/atomic_file.h"
#include "model/checkpoint.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/text.h"

namespace bytelm::cli {

namespace {

// One prompt per line (the newline is not part of it).
std::vector<std::string> read_prompts(const std::string& path) {
  std::vector<std::string> prompts;
  const std::string all = read_file(path);
  for (size_t pos = 0; pos < all.size();) {
    size_t end = all.find('\n', pos);
    if (end == std::string::npos) end = all.size();
    prompts.push_back(all.substr(pos, end - pos));
    pos = end + 1;
  }
  if (prompts.empty()) throw Error(path + ": no prompts (the file is empty)");
  return prompts;
}

// One JSON object per prompt, in order. JSON strings hold UTF-8 only: bytes that are not are shown as
// U+FFFD in "output", and the exact bytes are always in "output_base64".
// tokenizer: the BPE baseline's (null for byte models).
// With a draft, the rounds' draft acceptance follows on stderr.
void print_batches(LanguageModelImpl& model, const Tokenizer* tokenizer, const std::vector<std::string>& prompts,
                   const GenerateOptions& opt, int64_t batch) {
  int64_t rounds = 0, drafted = 0, accepted = 0;
  for (size_t first = 0; first < prompts.size(); first += size_t(batch)) {
    std::vector<std::string> chunk(prompts.begin() + first,
                                   prompts.begin() + std::min(prompts.size(), first + size_t(batch)));
    GenerateOptions o = opt;
    o.seed = opt.seed + first;
    BatchDecoderStats st;
    auto outs = tokenizer ? generate_tokens_batch(model, *tokenizer, chunk, o) : generate_batch(model, chunk, o, &st);
    rounds += st.draft_rounds, drafted += st.drafted, accepted += st.draft_accepted;
    for (size_t i = 0; i < outs.size(); ++i) {
      nlohmann::json j{{"index", first + i},
                       {"prompt", chunk[i]},
                       {"output", outs[i]},
                       {"output_base64", base64_encode(outs[i])},
                       {"utf8", is_utf8(outs[i])}};
      std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      std::fflush(stdout);
    }
  }
  if (opt.draft)
    std::fprintf(stderr, "bytelm: draft acceptance rate = %.3f (%lld accepted / %lld drafted), %lld rounds\n",
                 drafted > 0 ? double(accepted) / double(drafted) : 0.0, (long long)accepted, (long long)drafted,
                 (long long)rounds);
}

struct GenerateCli {
  GenerateOptions gen;
  std::string ckpt;
  std::string prompt_file;
  std::string prompts_file;        // one prompt per line, generated in batches, JSON lines out
  int64_t batch = 8;               // prompts per batched pass
  std::vector<std::string> stops;  // as typed: C escapes not yet decoded
  std::string draft;               // speculative decoding: the draft's checkpoint, or "self" (BLT's entropy model)
  SpeculativeOptions spec;
};

// --draft: the draft model, checked against the model.
LanguageModel open_draft(const GenerateCli& c, const LanguageModel& model) {
  const GenerateOptions& opt = c.gen;
  if (opt.no_cache) throw Error("--draft decodes with the KV caches: not with --no-cache");
  check_speculative_options(c.spec);
  LanguageModel draft =
      c.draft == "self" ? model->entropy_patcher() : load_for_inference(c.draft, opt.device, opt.threads);
  if (!draft) throw Error("--draft self: a " + model->config().model + " model has no entropy model of its own");
  check_speculative(*model, *draft, c.spec);
  return draft;
}

// --draft: speculative decoding of the one prompt, streamed, then its draft acceptance rate on stderr. It runs in
// the batch decoder with one row (a block checked in one call of every model; generate_speculative(), the
// batch-1 reference over feed() and rewind(), gives the same bytes: test_batch_speculative).
int run_speculative(GenerateCli& c, const LanguageModel& model, const std::function<void(uint8_t)>& sink) {
  GenerateOptions opt = c.gen;
  LanguageModel draft = open_draft(c, model);
  opt.draft = draft.get();
  opt.draft_max = c.spec.draft_max;
  opt.draft_p_min = c.spec.draft_p_min;
  BatchDecoderStats stats;
  const auto t0 = std::chrono::steady_clock::now();
  const auto out = decode_batch(*model, {opt.prompt}, opt, nullptr, &stats, [&](int64_t, uint8_t b) { sink(b); });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double generated = double(out[0].size());
  std::fprintf(stderr,
               "\nbytelm: draft acceptance rate = %.3f (%lld accepted / %lld drafted), %.2f bytes per round "
               "(%lld rounds), %.0f bytes/s\n",
               stats.drafted > 0 ? double(stats.draft_accepted) / double(stats.drafted) : 0.0,
               (long long)stats.draft_accepted, (long long)stats.drafted,
               stats.draft_rounds > 0 ? generated / double(stats.draft_rounds) : 0.0, (long long)stats.draft_rounds,
               seconds > 0 ? generated / seconds : 0.0);
  return 0;
}

int run(GenerateCli& c) {
  GenerateOptions& opt = c.gen;
  if (c.ckpt.empty()) throw Error("--ckpt is required");
  if (c.batch < 1) throw Error("--batch must be >= 1");
  if (!c.prompt_file.empty()) opt.prompt = read_file(c.prompt_file);
  for (const auto& s : c.stops) opt.stop.push_back(unescape_c(s, "--stop " + s));
  check_generate_options(opt);
  auto model = load_for_inference(c.ckpt, opt.device, opt.threads);
  std::unique_ptr<Tokenizer> tokenizer;
  if (model->reads_tokens())
    tokenizer = std::make_unique<Tokenizer>(load_checkpoint_tokenizer(c.ckpt, model->config().vocab_size));
  if (!c.prompts_file.empty()) {
    LanguageModel draft;  // speculative rounds batched (kept alive for the batches)
    if (!c.draft.empty()) {
      draft = open_draft(c, model);
      opt.draft = draft.get();
      opt.draft_max = c.spec.draft_max;
      opt.draft_p_min = c.spec.draft_p_min;
    }
    print_batches(*model, tokenizer.get(), read_prompts(c.prompts_file), opt, c.batch);
    return 0;
  }
  std::function<void(uint8_t)> sink = [](uint8_t b) {
    std::fputc(b, stdout);
    std::fflush(stdout);
  };
  if (!c.draft.empty()) return run_speculative(c, model, sink);
  if (tokenizer)
    generate_tokens(*model, *tokenizer, opt, sink);
  else
    generate(*model, opt, sink);
  return 0;
}

}  // namespace

Command add_generate(CLI::App& app) {
  auto c = std::make_shared<GenerateCli>();
  GenerateOptions& gen = c->gen;
  auto* g = app.add_subcommand("generate", "Sample bytes from a checkpoint, streamed to stdout");
  g->add_option("--ckpt", c->ckpt, "Checkpoint directory (required)");
  auto* po = g->add_option("--prompt", gen.prompt, "Prompt text");
  auto* pf = g->add_option("--prompt-file", c->prompt_file, "Read the prompt bytes from this file")->excludes(po);
  g->add_option("--prompts-file", c->prompts_file,
                "Many prompts, one per line: generated --batch at a time, printed as JSON lines")
      ->excludes(po)
      ->excludes(pf);
  g->add_option("--batch", c->batch, "With --prompts-file: prompts decoded together in one batch");
  g->add_flag("!--shared-positions", gen.row_positions,
              "With --batch: keep the rows at one shared position (teacher-forcing the longer prompts) even "
              "where the model decodes each row at its own position");
  g->add_option("--max-bytes", gen.max_bytes, "Bytes to generate (>= 1)");
  g->add_option("--temperature", gen.temperature, "Sampling temperature (0 = greedy)");
  g->add_option("--top-k", gen.top_k, "Keep the k most likely bytes (0 = off)");
  g->add_option("--top-p", gen.top_p, "Nucleus sampling mass (1 = off)");
  g->add_option("--min-p", gen.min_p, "Keep bytes with probability >= min-p x the most likely one's (0 = off)");
  g->add_option(
      "--repetition-penalty", gen.repetition_penalty,
      "Divide positive (multiply negative) logits of bytes seen in the last --repetition-window bytes (1 = off)");
  g->add_option("--repetition-window", gen.repetition_window, "Bytes of context the repetition penalty looks at");
  g->add_option("--seed", gen.seed, "Sampling seed")->check(CLI::NonNegativeNumber);
  g->add_option("--stop", c->stops,
                "Stop once the output ends with this string (printed); C escapes (\\n, \\t, \\xHH); repeatable")
      ->take_all();
  add_draft_flags(g, &c->draft, &c->spec,
                  "one prompt prints the draft acceptance rate on stderr; --prompts-file batches the rounds");
  g->add_flag("--no-cache", gen.no_cache, "Recompute the whole window for every byte (slow reference path)");
  add_inference_flags(g, &gen, kAllInferenceFlags, "CPU threads (0 = all cores; batch-1 decoding is fastest on 1)");
  return {g, [c] { return run(*c); }};
}

}  // namespace bytelm::cli
