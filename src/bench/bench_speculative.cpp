// bench_speculative.cpp — `bytelm bench --spec-target CKPT --spec-draft CKPT`: speculative decoding at batch 1
// on trained checkpoints. Measures v(k) (the time of a (k+1)-byte target feed over a 1-byte feed), c (a draft
// byte's time over a target byte's), plain generation bytes/s, and per k: speculative bytes/s, the draft
// acceptance rate, bytes per round and whether greedy output equals plain generation. JSON lines on stdout
// (and --json-out), a table on stderr.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "bench/bench.h"
#include "bench/bench_measure.h"
#include "generate/speculative.h"
#include "model/checkpoint.h"
#include "model/model.h"
#include "util/device.h"
#include "util/error.h"
#include "util/platform.h"

namespace bytelm {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// Median seconds of one feed of n bytes after `prefix`, rewound after each (so each feed sees the same cache).
double feed_seconds(LanguageModelImpl& model, const std::string& prefix, int64_t n, int64_t reps,
                    const std::string& device) {
  c10::InferenceMode inference;
  auto to_ids = [&](const std::string& s) {
    auto t = torch::from_blob(const_cast<char*>(s.data()), {1, int64_t(s.size())}, torch::kUInt8);
    return t.to(torch::Device(device), torch::kLong);
  };
  model.start(1);
  if (!prefix.empty()) model.feed(to_ids(prefix));
  const auto block = to_ids(std::string(size_t(n), 'e'));
  std::vector<double> samples;
  for (int64_t r = 0; r < reps + 2; ++r) {  // the first two are warm-up
    const auto t0 = Clock::now();
    model.feed(block);
    synchronize(torch::Device(device));
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    model.rewind(n);
    if (r >= 2) samples.push_back(dt);
  }
  return spread_of(samples).median;
}

// feed_seconds averaged over `phases` prefixes (the prompt plus 0 .. phases-1 bytes): for a model with
// fixed patches of P bytes, P phases cover every position in a patch, the one that closes it included.
double mean_feed_seconds(LanguageModelImpl& model, const std::string& prefix, int64_t n, int64_t phases,
                         const std::string& device) {
  double sum = 0;
  for (int64_t ph = 0; ph < phases; ++ph)
    sum += feed_seconds(model, prefix + std::string(size_t(ph), 'e'), n, phases > 1 ? 10 : 30, device);
  return sum / double(phases);
}

struct SpecRow {
  int64_t k = 0;
  Spread bps;
  SpeculativeStats stats;
  bool same = false;
};

}  // namespace

int run_speculative_bench(const BenchOptions& opt) {
  if (opt.spec_draft.empty()) throw Error("--spec-target needs --spec-draft (a checkpoint, or self)");
  if (opt.spec_k.empty()) throw Error("--spec-k needs at least one value");
  for (int64_t k : opt.spec_k)
    if (k < 1) throw Error("--spec-k values must be >= 1");
  if (opt.gen_bytes < 1 || opt.repeat < 1) throw Error("--gen-bytes and --repeat must be >= 1");
  const int threads = setup_threads(opt.gen_threads);
  auto target = load_for_inference(opt.spec_target, opt.device, threads);
  auto draft =
      opt.spec_draft == "self" ? target->entropy_patcher() : load_for_inference(opt.spec_draft, opt.device, threads);
  if (!draft) throw Error("--spec-draft self: a " + target->config().model + " model has no entropy model of its own");
  SpeculativeOptions spec;
  spec.draft_p_min = opt.spec_p_min;
  check_speculative(*target, *draft, spec);
  std::ofstream json_file;
  if (!opt.json_out.empty()) {
    json_file.open(opt.json_out, std::ios::app);
    if (!json_file) throw Error(opt.json_out + ": cannot open for writing");
  }
  auto emit = [&](const json& j) {
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
    if (json_file) json_file << j.dump() << "\n" << std::flush;
  };
  GenerateOptions g;
  static_cast<InferenceSettings&>(g) = opt;
  g.threads = threads;
  g.precision = use_bf16(opt.precision, opt.device) ? "bf16" : "fp32";
  g.prompt = opt.spec_prompt;
  g.max_bytes = opt.gen_bytes;
  g.temperature = opt.spec_temperature;
  g.decode = "dynamic";  // the growing caches speculative decoding uses too
  json base{{"target", opt.spec_target}, {"draft", opt.spec_draft},        {"device", opt.device},
            {"threads", threads},        {"precision", g.precision},       {"temperature", g.temperature},
            {"bytes", opt.gen_bytes},    {"prompt_bytes", g.prompt.size()}};
  // Costs: v(k) of the target, c of the draft (feeds after the prompt, averaged over the positions in a
  // fixed patch when the target has one).
  const int64_t phases = std::max<int64_t>(1, target->fixed_patch_size());
  const double one = mean_feed_seconds(*target, g.prompt, 1, phases, opt.device);
  const double c = mean_feed_seconds(*draft, g.prompt, 1, phases, opt.device) / one;
  std::vector<double> v;
  for (int64_t k : opt.spec_k) {
    v.push_back(mean_feed_seconds(*target, g.prompt, k + 1, phases, opt.device) / one);
    json j = base;
    j.update({{"bench", "speculative_cost"}, {"k", k}, {"v", v.back()}, {"c", c}, {"target_byte_seconds", one}});
    emit(j);
  }
  // Plain generation, then speculative with each k.
  std::string ref;
  generate(*target, g, [](uint8_t) {});  // warm-up
  const Measured plain = measure_runs(opt.repeat, opt.device, [&] {
    ref = generate(*target, g, [](uint8_t) {});
    return int64_t(ref.size());
  });
  json jp = base;
  jp.update({{"bench", "speculative"}, {"k", 0}});
  put_spread(jp, "bytes_per_s", plain.bytes_per_s);
  emit(jp);
  std::vector<SpecRow> rows;
  for (int64_t k : opt.spec_k) {
    SpecRow r;
    r.k = spec.draft_max = k;
    std::string out;
    r.bps = measure_runs(opt.repeat, opt.device, [&] {
              out = generate_speculative(
                  *target, *draft, g, spec, [](uint8_t) {}, &r.stats);
              return int64_t(out.size());
            }).bytes_per_s;
    r.same = out == ref;
    json j = base;
    j.update({{"bench", "speculative"},
              {"k", k},
              {"p_min", spec.draft_p_min},
              {"acceptance", r.stats.acceptance()},
              {"bytes_per_round", r.stats.bytes_per_round()},
              {"rounds", r.stats.rounds},
              {"speedup", r.bps.median / plain.bytes_per_s.median},
              {"same_bytes", r.same}});
    put_spread(j, "bytes_per_s", r.bps);
    emit(j);
    rows.push_back(r);
  }
  std::fprintf(
      stderr,
      "\nspeculative decoding, %s (target) + %s (draft), %s, %d thread(s), temperature %g, %lld bytes after "
      "a %zu-byte prompt; c = %.3f (draft byte / target byte)\n"
      "| k | v(k) | bytes/s | speedup | acceptance | bytes/round | same bytes as plain |\n|---|---|---|---|---|"
      "---|---|\n| plain | - | %s | 1.00 | - | 1.00 | - |\n",
      opt.spec_target.c_str(), opt.spec_draft.c_str(), opt.device.c_str(), threads, g.temperature,
      (long long)g.max_bytes, g.prompt.size(), c, with_spread(plain.bytes_per_s).c_str());
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    std::fprintf(stderr, "| %lld | %.2f | %s | %.2f | %.3f | %.2f | %s |\n", (long long)r.k, v[i],
                 with_spread(r.bps).c_str(), r.bps.median / plain.bytes_per_s.median, r.stats.acceptance(),
                 r.stats.bytes_per_round(),
                 g.temperature > 0 ? "-"
                 : r.same          ? "yes"
                                   : "no");
  }
  return 0;
}

}  // namespace bytelm
