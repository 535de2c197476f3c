// bench.cpp — `bytelm bench` (see bench.h). Every number printed here is measured in this process.
#include "train/bench.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "blt/patcher.h"
#include "data/corpus.h"
#include "model/blt.h"
#include "model/bpe.h"
#include "model/checkpoint.h"
#include "train/adamw.h"
#include "train/evaluate.h"
#include "train/patching.h"
#include "train/static_decoder.h"
#include "util/error.h"
#include "util/device.h"
#include "util/platform.h"

namespace bytelm {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Resets the kernel's peak-RSS counter so each case reports its own peak (Linux >= 4.0).
void reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
}

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
    }
    loss.backward();
    adam.clip_step_and_clear(1e-4, 1.0);
  }
};

TrainStep make_train_step(LanguageModelImpl& model, const torch::Device& device, bool bf16) {
  return TrainStep{model, AdamW(trainable_parameters_of(model), AdamWOptions{}), device, bf16};
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

}  // namespace

int run_bench(const BenchOptions& opt) {
  if (opt.steps < 1 || opt.gen_bytes < 0 || opt.batch < 0 || opt.gen_batch < 0 || opt.max_context < 0)
    throw Error("--steps must be >= 1; --gen-bytes, --gen-batch, --batch, --max-context >= 0");
  check_device(opt.device);
  const bool bf16 = use_bf16(opt.precision, opt.device);
  const int threads = setup_threads(opt.threads);
  warn_if_slow_blas();
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
  std::vector<ModelConfig> cfgs;
  for (const auto& c : opt.configs) cfgs.push_back(load_config(c, ""));  // validate all before measuring

  const torch::Device device(opt.device);
  const bool cuda = device.is_cuda();
  const std::string precision = bf16 ? "bf16" : "fp32";
  const double peak = measure_matmul_peak(opt.device, opt.peak_n, 2.0);
  emit({{"bench", "matmul_peak"}, {"device", opt.device}, {"threads", threads}, {"n", opt.peak_n},
        {"dtype", cuda ? "bf16" : "fp32"}, {"flops_per_s", peak}, {"blas", loaded_blas()}});
  // MFU: on CUDA against the H100's dense bf16 peak (989 TFLOP/s), on CPU against the matmul measured here.
  const double mfu_peak = cuda ? kH100DenseBf16Flops : peak;

  if (!opt.entropy_model.empty() && !opt.data.empty()) {
    // Mean bytes per patch of a trained entropy model on (the validation split of) a corpus.
    auto ent = load_for_inference(opt.entropy_model, opt.device, opt.threads);
    Corpus corpus(opt.data, 0.05);
    const int64_t n = std::min<int64_t>(corpus.size(Split::Val), 262144);
    std::string sample(size_t(n), '\0');
    corpus.read(Split::Val, 0, n, reinterpret_cast<uint8_t*>(&sample[0]));
    auto h = byte_entropies(*ent, sample, opt.device);
    for (double th : {blt::kReleasedThreshold, 2.0}) {
      double mean = double(n) / double(patch_starts(h, th, 0).size());
      emit({{"bench", "patching"}, {"entropy_model", opt.entropy_model}, {"bytes", n}, {"threshold", th},
            {"mean_bytes_per_patch", mean}});
    }
  }

  struct Row {
    std::string name, model;
    int64_t params;
    double train_bps = 0, flops_per_byte = 0, flops = 0, mfu = 0, gen_bps = 0, gen_uncached_bps = 0, gen_batch_bps = 0,
           mem_train = 0, mem_gen = 0, patch = 0;
    int64_t max_context = 0;
  };
  std::vector<Row> rows;
  // Peak memory of the case just run: GPU allocator peak on CUDA, resident set on CPU (MB).
  auto reset_peak = [&] { cuda ? reset_device_peak(device) : reset_peak_rss(); };
  auto peak_mb = [&] { return double(cuda ? device_peak_bytes(device) : peak_rss_bytes()) / 1e6; };
  for (size_t ci = 0; ci < cfgs.size(); ++ci) {
    const auto& cfg = cfgs[ci];
    Row row{preset_name(opt.configs[ci]), cfg.model, 0};
    torch::manual_seed(0);
    auto model = make_model(cfg);
    model->to(device);
    row.params = model->num_params();
    const int64_t B = opt.batch > 0 ? opt.batch : (cuda ? (cfg.model == "blt" ? 4 : 8) : 4), T = cfg.context;
    auto* blt = dynamic_cast<BltImpl*>(model.get());
    if (blt) {
      torch::NoGradGuard no_grad;
      auto x = torch::randint(0, kByteVocab, {B, T}, torch::TensorOptions().dtype(torch::kLong)).to(device);
      calibrate_random_patcher(*blt, x);
      blt->set_mean_patch_size(blt->measure_patch_size(x));
      row.patch = blt->mean_patch_size();
    }
    const double fwd = model->forward_flops_per_byte();
    // The BPE baseline's positions are tokens (ids < 256 are valid tokens too): bytes = tokens x its nominal
    // bytes per token, so its rows compare with byte models in bytes.
    auto* bpe = dynamic_cast<BpeModelImpl*>(model.get());
    const double bytes_per_position = bpe ? bpe->bytes_per_token() : 1.0;
    row.flops_per_byte = 3 * fwd;

    if (!opt.skip_train) {
      reset_peak();
      auto step = make_train_step(*model, device, bf16);
      auto x = torch::randint(0, kByteVocab, {B, T}, torch::TensorOptions().dtype(torch::kLong)).to(device);
      step(x);  // warm-up: allocations, caches, kernel selection
      sync(opt.device);
      auto t0 = Clock::now();
      for (int64_t s = 0; s < opt.steps; ++s) step(x);
      sync(opt.device);
      double dt = seconds_since(t0);
      row.train_bps = double(B * T * opt.steps) * bytes_per_position / dt;
      row.flops = row.train_bps * 3 * fwd;
      row.mfu = row.flops / mfu_peak;
      row.mem_train = peak_mb();
      emit({{"bench", "train"}, {"config", row.name}, {"model", cfg.model}, {"params", row.params}, {"batch", B},
            {"context", T}, {"steps", opt.steps}, {"seconds", dt}, {"bytes_per_s", row.train_bps},
            {"flops_per_byte", 3 * fwd}, {"flops_per_s", row.flops}, {"peak_fraction", row.flops / peak},
            {"mfu", row.mfu}, {"mfu_peak_flops", mfu_peak}, {cuda ? "peak_gpu_mb" : "peak_rss_mb", row.mem_train},
            {"device", opt.device}, {"precision", precision}, {"threads", threads},
            {"mean_patch_size", blt ? json(row.patch) : json(cfg.patch_size)},
            {"bytes_per_token", bpe ? json(bytes_per_position) : json(nullptr)}});
    }
    if (!opt.skip_generate && opt.gen_bytes > 0) {
      const int gen_threads = setup_threads(opt.gen_threads);
      reset_peak();
      model->eval();
      GenerateOptions g;
      g.max_bytes = std::min<int64_t>(opt.gen_bytes, cfg.context - 1);
      g.temperature = 0;
      g.device = opt.device;
      g.precision = precision;
      g.decode = opt.decode;
      auto decode_mode = [&](int64_t batch) {  // which steps generation uses at this batch size
        const StepPlan plan = plan_steps(g.decode, *model, device, batch);
        return plan.graphs ? "cuda_graphs" : plan.static_steps ? "static" : "dynamic";
      };
      auto t0 = Clock::now();
      std::string out = generate(*model, g, [](uint8_t) {});
      sync(opt.device);
      double dt = seconds_since(t0);
      row.gen_bps = double(out.size()) * bytes_per_position / dt;
      row.mem_gen = peak_mb();
      emit({{"bench", "generate"}, {"config", row.name}, {"model", cfg.model}, {"params", row.params}, {"batch", 1},
            {"cache", true}, {"decode", decode_mode(1)}, {"bytes", out.size()}, {"seconds", dt}, {"bytes_per_s", row.gen_bps},
            {cuda ? "peak_gpu_mb" : "peak_rss_mb", row.mem_gen}, {"device", opt.device}, {"precision", precision},
            {"threads", gen_threads}});
      if (opt.gen_batch > 1) {
        // Several prompts decoded together (different lengths, so rows are teacher-forced part of the way).
        std::vector<std::string> prompts;
        for (int64_t i = 0; i < opt.gen_batch; ++i) prompts.push_back(std::string(size_t(i % 4), char('a' + i % 26)));
        auto t1 = Clock::now();
        auto outs = generate_batch(*model, prompts, g);
        sync(opt.device);
        double dtb = seconds_since(t1);
        int64_t total = 0;
        for (const auto& o : outs) total += int64_t(o.size());
        row.gen_batch_bps = double(total) * bytes_per_position / dtb;
        emit({{"bench", "generate"}, {"config", row.name}, {"model", cfg.model}, {"params", row.params},
              {"batch", opt.gen_batch}, {"cache", true}, {"decode", decode_mode(opt.gen_batch)}, {"bytes", total}, {"seconds", dtb},
              {"bytes_per_s", row.gen_batch_bps}, {"device", opt.device}, {"precision", precision},
              {"threads", gen_threads}});
      }
      if (blt && std::find(opt.uncached.begin(), opt.uncached.end(), row.name) != opt.uncached.end()) {
        // The reference path: the whole window recomputed for every byte (what public BLT code does).
        g.no_cache = true;
        t0 = Clock::now();
        std::string ref = generate(*model, g, [](uint8_t) {});
        sync(opt.device);
        double dt_ref = seconds_since(t0);
        row.gen_uncached_bps = double(ref.size()) / dt_ref;
        emit({{"bench", "generate"}, {"config", row.name}, {"model", cfg.model}, {"params", row.params}, {"batch", 1},
              {"cache", false}, {"bytes", ref.size()}, {"seconds", dt_ref}, {"bytes_per_s", row.gen_uncached_bps},
              {"cached_speedup", row.gen_bps / row.gen_uncached_bps}, {"same_bytes", ref == out},
              {"device", opt.device}, {"precision", precision}, {"threads", gen_threads}});
      }
      setup_threads(opt.threads);
      model->train();
    }
    if (opt.max_context > 0 && cfg.model == "megabyte") {
      // The largest context (doubling from the config's) for which one training step at batch 1 fits.
      model.reset();
      for (int64_t ctx = cfg.context; ctx <= opt.max_context; ctx *= 2) {
        ModelConfig big = cfg;
        big.context = ctx;
        try {
          reset_peak();
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
          emit({{"bench", "max_context"}, {"config", row.name}, {"context", ctx}, {"batch", 1}, {"fits", true},
                {"step_seconds", dt}, {cuda ? "peak_gpu_mb" : "peak_rss_mb", peak_mb()}, {"device", opt.device},
                {"precision", precision}});
        } catch (const std::exception& e) {
          if (!is_out_of_memory(e)) throw;
          emit({{"bench", "max_context"}, {"config", row.name}, {"context", ctx}, {"batch", 1}, {"fits", false},
                {"device", opt.device}, {"precision", precision}});
          break;
        }
      }
    }
    rows.push_back(row);
  }

  std::fprintf(stderr, "\nbytelm bench on %s, %s (%d threads; generation %d): measured matmul peak %.1f GFLOP/s%s\n",
               opt.device.c_str(), precision.c_str(), threads, opt.gen_threads, peak / 1e9,
               cuda ? "; MFU against 989 TFLOP/s (H100 dense bf16)" : "; MFU against that peak");
  std::fprintf(stderr, "| config | model | params | train bytes/s | train FLOP/byte | model GFLOP/s | MFU | train %s MB "
                       "| gen bytes/s | gen bytes/s, batch %lld | gen bytes/s, no cache | gen %s MB | max context |\n",
               cuda ? "GPU" : "RSS", (long long)opt.gen_batch, cuda ? "GPU" : "RSS");
  std::fprintf(stderr, "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& r : rows) {
    auto or_dash = [](double v, const std::string& s) { return v > 0 ? s : std::string("-"); };
    std::fprintf(stderr, "| %s | %s | %.1fM | %.0f | %.3g | %.1f | %.1f%% | %.0f | %.1f | %s | %s | %.0f | %s |\n",
                 r.name.c_str(), r.model.c_str(), r.params / 1e6, r.train_bps, r.flops_per_byte, r.flops / 1e9,
                 100 * r.mfu, r.mem_train, r.gen_bps, or_dash(r.gen_batch_bps, format_rate(r.gen_batch_bps)).c_str(),
                 or_dash(r.gen_uncached_bps, format_rate(r.gen_uncached_bps)).c_str(), r.mem_gen,
                 or_dash(double(r.max_context), std::to_string(r.max_context)).c_str());
  }
  return 0;
}

}  // namespace bytelm
