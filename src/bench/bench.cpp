// bench.cpp — `bytelm bench` (see bench.h), in named steps: set up (device, threads, output), the matmul
// peak, an entropy model's patch sizes (optional), then per config: training, generation (batch 1, batched,
// uncached BLT) and MEGABYTE's largest context; last, the table. Every number printed is measured here.
#include "bench/bench.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "bench/bench_measure.h"
#include "blt/entropy_threshold.h"
#include "blt/patcher.h"
#include "data/corpus.h"
#include "generate/generate.h"
#include "generate/static_decoder.h"
#include "model/blt.h"
#include "model/checkpoint.h"
#include "model/decode_weights.h"
#include "model/factory.h"
#include "optim/adamw.h"
#include "util/device.h"
#include "util/error.h"
#include "util/memory.h"
#include "util/platform.h"
#include "util/stats.h"

namespace bytelm {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void sync(const std::string& device) { synchronize(torch::Device(device)); }

// One optimizer step as the trainer takes it: forward under autocast, backward, clipping, AdamW.
struct TrainStep {
  LanguageModelImpl& model;
  AdamW adam;
  torch::Device device;
  bool bf16;
  void operator()(const torch::Tensor& x) {
    torch::Tensor loss;
    {
      AutocastScope autocast(device, bf16);
      loss = byte_loss(model.forward(x), x, model.vocab_offset());
      auto extra = model.auxiliary_loss();  // H-Net's ratio loss, as the trainer adds it
      if (extra.defined()) loss = loss + extra;
    }
    loss.backward();
    adam.clip_step_and_clear(1e-4, 1.0);
  }
};

TrainStep make_train_step(LanguageModelImpl& model, const torch::Device& device, bool bf16) {
  const NamedTensors params = trainable_parameters_of(model);
  std::vector<double> lr_scales;
  for (const auto& [name, p] : params) lr_scales.push_back(model.lr_multiplier(name));
  return TrainStep{model, AdamW(params, AdamWOptions{}, lr_scales), device, bf16};
}

bool is_out_of_memory(const std::exception& e) {
  const std::string what = e.what();
  return what.find("out of memory") != std::string::npos || what.find("std::bad_alloc") != std::string::npos ||
         dynamic_cast<const std::bad_alloc*>(&e) != nullptr;
}

// BLT with random weights has a uniformly unsure entropy model; set the threshold so that a fraction
// 1/P of positions start patches (P = the config's patch_size), i.e. patches of the intended mean size.
void calibrate_random_patcher(BltImpl& blt, const torch::Tensor& x) {
  PatchingConfig p = blt.config().patching;
  if (p.mode != "entropy") return;
  auto ids = torch::cat({torch::ones({x.size(0), 1}, x.options()), x + 4}, 1);
  auto h = std::get<0>(blt.entropies(ids).narrow(1, 1, x.size(1)).flatten().sort());
  p.threshold = h.select(0, int64_t(double(h.numel()) * (1.0 - 1.0 / double(p.patch_size)))).item<double>();
  blt.set_patching(p);
}

std::string preset_name(const std::string& s) {
  auto slash = s.find_last_of('/');
  std::string base = slash == std::string::npos ? s : s.substr(slash + 1);
  auto dot = base.rfind(".json");
  return dot == std::string::npos ? base : base.substr(0, dot);
}

void scale(Spread& s, double factor) {
  s.median *= factor;
  s.min *= factor;
  s.max *= factor;
}

// What every case needs: the options, the device, where JSON lines go, the peak to divide by.
struct Bench {
  const BenchOptions& opt;
  torch::Device device;
  bool cuda, bf16;
  std::string precision;  // "bf16" | "fp32"
  int threads;
  double peak = 0;                   // measured matmul peak (FLOP/s)
  double mfu_peak = 0;               // on CUDA the H100's dense bf16 peak, on the CPU the measured one
  std::shared_ptr<PeakMeter> meter;  // made once, before any model, and reused for every row's peak
  std::string mem_key;               // "peak_gpu_mb" | "peak_rss_mb"
  std::ofstream json_file;

  void emit(const json& j) {
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
    if (json_file) json_file << j.dump() << "\n" << std::flush;
  }
  // Peak memory of the case just run: GPU allocator peak on CUDA, resident set on CPU (MB).
  void reset_peak() { cuda ? reset_device_peak(device) : reset_peak_resident(); }
  double peak_mb() const { return double(cuda ? device_peak_bytes(device) : peak_rss_bytes()) / 1e6; }
};

// One config's figures, for the table.
struct Row {
  std::string name, model;
  int64_t params;
  Spread train_bps, gen_bps, gen_uncached_bps, gen_batch_bps;
  Spread peak;  // the matmul peak measured around this row's training steps (FLOP/s)
  double flops_per_byte = 0, flops = 0, mfu = 0, mem_train = 0, mem_gen = 0, patch = 0, train_faults = 0;
  // The BPE baseline's positions are tokens: bytes = tokens x its nominal bytes per token, so its rows
  // compare with byte models in bytes (1 for byte models).
  double bytes_per_position = 1;
  int64_t max_context = 0;
};

Spread bench_peak(Bench& b) {
  const BenchOptions& opt = b.opt;
  b.meter = std::make_shared<PeakMeter>(opt.device, opt.peak_n);
  const Spread peak_spread = b.meter->measure(std::max<int64_t>(5, opt.repeat));
  json j{{"bench", "matmul_peak"},
         {"device", opt.device},
         {"threads", b.threads},
         {"n", opt.peak_n},
         {"dtype", b.cuda ? "bf16" : "fp32"},
         {"samples", peak_spread.samples},
         {"blas", blas_name()},
         {"allocator", allocator_in_use()}};
  put_spread(j, "flops_per_s", peak_spread);
  b.emit(j);
  return peak_spread;
}

// Mean bytes per patch of a trained entropy model on (the validation split of) a corpus.
void bench_patching(Bench& b) {
  const BenchOptions& opt = b.opt;
  // Mean bytes per patch of a trained entropy model on (the validation split of) a corpus.
  auto ent = load_for_inference(opt.entropy_model, opt.device, opt.threads);
  Corpus corpus(opt.data, 0.05);
  const int64_t n = std::min<int64_t>(corpus.size(Split::Val), 262144);
  std::string sample(size_t(n), '\0');
  corpus.read(Split::Val, 0, n, reinterpret_cast<uint8_t*>(&sample[0]));
  auto h = byte_entropies(*ent, sample, opt.device);
  for (double th : {blt::kReleasedThreshold, 2.0}) {
    double mean = double(n) / double(patch_starts(h, th, 0).size());
    b.emit({{"bench", "patching"},
            {"entropy_model", opt.entropy_model},
            {"bytes", n},
            {"threshold", th},
            {"mean_bytes_per_patch", mean}});
  }
}

// Training: warm-up steps, then each step timed alone.
void bench_train(Bench& b, Row& row, LanguageModelImpl& model, const ModelConfig& cfg, int64_t B, double fwd,
                 const BltImpl* blt) {
  const BenchOptions& opt = b.opt;
  const int64_t T = cfg.context;
  b.reset_peak();
  auto step = make_train_step(model, b.device, b.bf16);
  auto x = torch::randint(0, kByteVocab, {B, T}, torch::TensorOptions().dtype(torch::kLong)).to(b.device);
  // Warm-up: first touch of activations, gradients and optimizer state, caches, kernel selection.
  const int64_t faults0 = minor_page_faults();
  for (int64_t s = 0; s < std::max<int64_t>(opt.warmup, 1); ++s) step(x);
  sync(opt.device);
  // The matmul peak right before and right after the timed steps: on a shared or virtual machine the
  // attainable FLOP/s drifts (two runs in one quiet hour measured 177 and 287 GFLOP/s at start-up), so each
  // row is divided by the peak of its own minutes, not by the one measured when the bench started. The
  // meter's matrices were allocated at start-up, so measuring here moves nothing in the heap training keeps
  // (matrices allocated per row cost the timed steps thousands of extra page faults).
  std::vector<double> peaks = b.meter->samples(3);
  const int64_t faults1 = minor_page_faults();
  const CpuSeconds cpu0 = cpu_seconds();
  std::vector<double> rates, secs;
  for (int64_t s = 0; s < opt.steps; ++s) {  // each step timed alone: one sample
    auto t0 = Clock::now();
    step(x);
    sync(opt.device);
    secs.push_back(seconds_since(t0));
    rates.push_back(double(B * T) * row.bytes_per_position / secs.back());
  }
  double dt = 0;
  for (double v : secs) dt += v;
  row.train_faults = double(minor_page_faults() - faults1) / double(opt.steps);
  const CpuSeconds cpu1 = cpu_seconds();
  row.mem_train = b.peak_mb();
  for (double p : b.meter->samples(3)) peaks.push_back(p);
  row.peak = spread_of(peaks);
  const double peak = row.peak.median;
  row.train_bps = spread_of(rates);
  row.flops = row.train_bps.median * 3 * fwd;
  row.mfu = row.flops / (b.cuda ? b.mfu_peak : peak);
  json j{{"bench", "train"},
         {"config", row.name},
         {"model", cfg.model},
         {"params", row.params},
         {"batch", B},
         {"context", T},
         {"steps", opt.steps},
         {"warmup_steps", std::max<int64_t>(opt.warmup, 1)},
         {"seconds", dt},
         {"flops_per_byte", 3 * fwd},
         {"flops_per_s", row.flops},
         {"peak_fraction", row.flops / peak},
         {"peak_fraction_min", row.train_bps.min * 3 * fwd / peak},
         {"peak_fraction_max", row.train_bps.max * 3 * fwd / peak},
         {"mfu", row.mfu},
         {"mfu_peak_flops", b.cuda ? b.mfu_peak : peak},
         {b.mem_key, row.mem_train},
         {"minor_faults_per_step", row.train_faults},
         {"minor_faults_warmup", faults1 - faults0},
         {"user_cpu_seconds_per_step", (cpu1.user - cpu0.user) / double(opt.steps)},
         {"system_cpu_seconds_per_step", (cpu1.system - cpu0.system) / double(opt.steps)},
         {"device", opt.device},
         {"precision", b.precision},
         {"threads", b.threads},
         {"mean_patch_size", model.dynamic_patches() ? json(row.patch) : json(cfg.patch_size)}};
  put_spread(j, "bytes_per_s", row.train_bps);
  put_spread(j, "matmul_peak_flops_per_s", row.peak);
  b.emit(j);
}

// Generation: batch 1 (a warm-up run first), several prompts at once, and BLT's uncached reference path.
void bench_generate(Bench& b, Row& row, LanguageModelImpl& model_ref, const ModelConfig& cfg, const BltImpl* blt) {
  const BenchOptions& opt = b.opt;
  LanguageModelImpl* model = &model_ref;
  const torch::Device& device = b.device;
  const std::string& precision = b.precision;
  const int gen_threads = setup_threads(opt.gen_threads);
  b.reset_peak();
  model->eval();
  GenerateOptions g;
  static_cast<InferenceSettings&>(g) = opt;  // device, decode, decode weights
  g.precision = precision;                   // resolved: "bf16" | "fp32"
  g.threads = gen_threads;
  g.max_bytes = opt.gen_bytes;  // exactly; past the context, generation slides its window
  g.temperature = 0;
  auto decode_mode = [&](int64_t batch) {  // which steps generation uses at this batch size
    const StepPlan plan = plan_steps(g.decode, *model, device, batch);
    return plan.graphs ? "cuda_graphs" : plan.static_steps ? "static" : "dynamic";
  };
  auto gen_json = [&](int64_t batch, bool cache, const Measured& m) {
    json j{{"bench", "generate"},
           {"config", row.name},
           {"model", cfg.model},
           {"params", row.params},
           {"batch", batch},
           {"cache", cache},
           {"bytes", m.bytes},
           {"seconds", double(m.bytes) / m.bytes_per_s.median},
           {"runs", m.bytes_per_s.samples},
           {"minor_faults_per_byte", m.faults_per_byte},
           {"device", opt.device},
           {"precision", precision},
           {"threads", gen_threads},
           {"decode_weights", opt.decode_weights}};
    if (cache) j["decode"] = decode_mode(batch);
    put_spread(j, "bytes_per_s", m.bytes_per_s);
    return j;
  };
  {  // warm-up: a short run allocates the caches and decoding state and touches the weights
    GenerateOptions w = g;
    w.max_bytes = std::min<int64_t>(g.max_bytes, 64);
    generate(*model, w, [](uint8_t) {});
  }
  std::string out;
  Measured m = measure_runs(opt.repeat, opt.device, [&] {
    out = generate(*model, g, [](uint8_t) {});
    return int64_t(out.size());
  });
  scale(m.bytes_per_s, row.bytes_per_position);
  row.gen_bps = m.bytes_per_s;
  row.mem_gen = b.peak_mb();
  json j = gen_json(1, true, m);
  j[b.mem_key] = row.mem_gen;
  b.emit(j);
  if (opt.gen_batch > 1) {
    // Several prompts decoded together (different lengths, so rows are teacher-forced part of the way).
    std::vector<std::string> prompts;
    for (int64_t i = 0; i < opt.gen_batch; ++i) prompts.push_back(std::string(size_t(i % 4), char('a' + i % 26)));
    GenerateOptions w = g;
    w.max_bytes = std::min<int64_t>(g.max_bytes, 16);
    generate_batch(*model, prompts, w);  // warm-up
    // Rows at their own positions (the default) and, for the models that have them, at one shared position.
    for (bool rows : {true, false}) {
      if (!rows && !model->has_row_decoding()) break;
      GenerateOptions gb = g;
      gb.row_positions = rows;
      Measured mb = measure_runs(opt.repeat, opt.device, [&] {
        int64_t total = 0;
        for (const auto& o : generate_batch(*model, prompts, gb)) total += int64_t(o.size());
        return total;
      });
      scale(mb.bytes_per_s, row.bytes_per_position);
      if (rows) row.gen_batch_bps = mb.bytes_per_s;
      json jb = gen_json(opt.gen_batch, true, mb);
      jb["positions"] = rows && model->has_row_decoding() ? "rows" : "shared";
      b.emit(jb);
    }
  }
  if (blt && std::find(opt.uncached.begin(), opt.uncached.end(), row.name) != opt.uncached.end()) {
    // The reference path: the whole window recomputed for every byte (what public BLT code does).
    g.no_cache = true;
    std::string ref;
    Measured mu = measure_runs(opt.repeat, opt.device, [&] {
      ref = generate(*model, g, [](uint8_t) {});
      return int64_t(ref.size());
    });
    row.gen_uncached_bps = mu.bytes_per_s;
    json ju = gen_json(1, false, mu);
    ju["cached_speedup"] = row.gen_bps.median / row.gen_uncached_bps.median;
    ju["same_bytes"] = ref == out;
    b.emit(ju);
  }
  setup_threads(opt.threads);
  model->train();
}

// MEGABYTE: the largest context (doubling from the config's) for which one training step at batch 1 fits.
void bench_max_context(Bench& b, Row& row, const ModelConfig& cfg) {
  const BenchOptions& opt = b.opt;
  const torch::Device& device = b.device;
  const std::string& precision = b.precision;
  const bool bf16 = b.bf16;
  for (int64_t ctx = cfg.context; ctx <= opt.max_context; ctx *= 2) {
    ModelConfig big = cfg;
    big.context = ctx;
    try {
      b.reset_peak();
      torch::manual_seed(0);
      auto m = make_model(big);
      m->to(device);
      auto step = make_train_step(*m, device, bf16);
      auto x = torch::randint(0, kByteVocab, {1, ctx}, torch::TensorOptions().dtype(torch::kLong)).to(device);
      auto t0 = Clock::now();
      step(x);
      sync(opt.device);
      const double dt = seconds_since(t0);
      row.max_context = ctx;
      b.emit({{"bench", "max_context"},
              {"config", row.name},
              {"context", ctx},
              {"batch", 1},
              {"fits", true},
              {"step_seconds", dt},
              {b.mem_key, b.peak_mb()},
              {"device", opt.device},
              {"precision", precision}});
    } catch (const std::exception& e) {
      if (!is_out_of_memory(e)) throw;
      b.emit({{"bench", "max_context"},
              {"config", row.name},
              {"context", ctx},
              {"batch", 1},
              {"fits", false},
              {"device", opt.device},
              {"precision", precision}});
      break;
    }
  }
}

void print_table(const Bench& b, const std::vector<Row>& rows, const Spread& peak_spread) {
  const BenchOptions& opt = b.opt;
  const int threads = b.threads;
  const bool cuda = b.cuda;
  const std::string& precision = b.precision;
  auto plural = [](int n, const char* word) { return std::to_string(n) + " " + word + (n == 1 ? "" : "s"); };
  std::fprintf(
      stderr,
      "\nbytelm bench on %s, %s (%s; generation %s, %s weights; malloc: %s): measured matmul peak %s GFLOP/s%s\n"
      "Figures: median (min-max) of %lld timed training steps after %lld warm-up, %lld generation runs\n",
      opt.device.c_str(), precision.c_str(), plural(threads, "thread").c_str(),
      plural(opt.gen_threads, "thread").c_str(), opt.decode_weights.c_str(), allocator_in_use().c_str(),
      with_spread({peak_spread.median / 1e9, peak_spread.min / 1e9, peak_spread.max / 1e9, peak_spread.samples}, "%.1f")
          .c_str(),
      cuda ? "; MFU against 989 TFLOP/s (H100 dense bf16)"
           : " at start; MFU against each row's own peak, measured just before and after its training steps",
      (long long)opt.steps, (long long)std::max<int64_t>(opt.warmup, 1), (long long)opt.repeat);
  std::fprintf(
      stderr,
      "| config | model | params | train bytes/s | train FLOP/byte | model GFLOP/s | MFU | peak GFLOP/s | train %s MB "
      "| gen bytes/s | gen bytes/s, %s | gen bytes/s, no cache | gen %s MB | max context "
      "| train faults/step |\n",
      cuda ? "GPU" : "RSS",
      opt.gen_batch > 1 ? ("batch " + std::to_string(opt.gen_batch)).c_str() : "batched (--gen-batch)",
      cuda ? "GPU" : "RSS");
  std::fprintf(stderr, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& r : rows) {
    const Spread peak_g{r.peak.median / 1e9, r.peak.min / 1e9, r.peak.max / 1e9, r.peak.samples};
    std::fprintf(stderr,
                 "| %s | %s | %.1fM | %s | %.3g | %.1f | %.1f%% | %s | %.0f | %s | %s | %s | %.0f | %s | %.0f |\n",
                 r.name.c_str(), r.model.c_str(), r.params / 1e6, with_spread(r.train_bps).c_str(), r.flops_per_byte,
                 r.flops / 1e9, 100 * r.mfu, with_spread(peak_g, "%.1f").c_str(), r.mem_train,
                 with_spread(r.gen_bps, "%.1f").c_str(), with_spread(r.gen_batch_bps, "%.1f").c_str(),
                 with_spread(r.gen_uncached_bps, "%.1f").c_str(), r.mem_gen,
                 r.max_context > 0 ? std::to_string(r.max_context).c_str() : "-", r.train_faults);
  }
}

}  // namespace

int run_bench(const BenchOptions& opt) {
  if (!opt.spec_target.empty()) return run_speculative_bench(opt);
  if (opt.steps < 1 || opt.warmup < 0 || opt.repeat < 1 || opt.gen_bytes < 0 || opt.batch < 0 || opt.gen_batch < 0 ||
      opt.max_context < 0)
    throw Error("--steps and --repeat must be >= 1; --warmup, --gen-bytes, --gen-batch, --batch, --max-context >= 0");
  check_device(opt.device);
  const bool bf16 = use_bf16(opt.precision, opt.device);
  Bench b{opt,  torch::Device(opt.device), torch::Device(opt.device).is_cuda(),
          bf16, bf16 ? "bf16" : "fp32",    setup_threads(opt.threads)};
  check_decode_weights(opt.decode_weights, opt.device, b.precision);
  b.mem_key = b.cuda ? "peak_gpu_mb" : "peak_rss_mb";
  if (!opt.json_out.empty()) {
    b.json_file.open(opt.json_out, std::ios::app);
    if (!b.json_file) throw Error(opt.json_out + ": cannot open for writing");
  }
  std::vector<ModelConfig> cfgs;
  for (const auto& c : opt.configs) cfgs.push_back(load_config(c, ""));  // validate all before measuring

  const Spread peak_spread = bench_peak(b);
  b.peak = peak_spread.median;
  b.mfu_peak = b.cuda ? kH100DenseBf16Flops : b.peak;
  if (!opt.entropy_model.empty() && !opt.data.empty()) bench_patching(b);

  std::vector<Row> rows;
  for (size_t ci = 0; ci < cfgs.size(); ++ci) {
    const auto& cfg = cfgs[ci];
    Row row{preset_name(opt.configs[ci]), cfg.model, 0};
    torch::manual_seed(0);
    auto model = make_model(cfg);
    model->to(b.device);
    row.params = model->num_params();
    const int64_t B = opt.batch > 0 ? opt.batch : (b.cuda ? (model->dynamic_patches() ? 4 : 8) : 4);
    auto* blt = dynamic_cast<BltImpl*>(model.get());
    if (blt) {
      torch::NoGradGuard no_grad;
      auto x = torch::randint(0, kByteVocab, {B, cfg.context}, torch::TensorOptions().dtype(torch::kLong)).to(b.device);
      calibrate_random_patcher(*blt, x);
      row.patch = blt->count_patches_of(x);
    } else if (model->dynamic_patches()) {  // H-Net: the chunks its (untrained) routing cuts in random bytes
      torch::NoGradGuard no_grad;
      auto x = torch::randint(0, kByteVocab, {B, cfg.context}, torch::TensorOptions().dtype(torch::kLong)).to(b.device);
      row.patch = model->count_patches_of(x);
    }
    const double fwd = model->forward_flops_per_byte();
    row.flops_per_byte = 3 * fwd;
    row.bytes_per_position = model->bytes_per_position();
    if (!opt.skip_train) bench_train(b, row, *model, cfg, B, fwd, blt);
    if (!opt.skip_generate && opt.gen_bytes > 0) bench_generate(b, row, *model, cfg, blt);
    if (opt.max_context > 0 && model->fixed_patch_size() > 0) {
      model.reset();
      bench_max_context(b, row, cfg);
    }
    rows.push_back(row);
  }
  print_table(b, rows, peak_spread);
  return 0;
}

}  // namespace bytelm
