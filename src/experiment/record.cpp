// record.cpp — measuring a trained run and writing down everything the report needs (see record.h).
#include "experiment/record.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>

#include "data/corpus.h"
#include "experiment/measure.h"
#include "experiment/plan.h"
#include "experiment/runner.h"
#include "model/blt.h"
#include "model/checkpoint.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/stats.h"

namespace bytelm::experiment {

using json = nlohmann::json;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Dynamic patches (BLT, H-Net): training FLOPs from the patches training really made. Each logged metrics line carries
// the mean patch size of the steps since the line before; those steps cost 3 x forward FLOPs per byte at that size.
// Returns the total and the mean patch size over the logged steps (0 and NaN when the lines carry none: older runs).
std::pair<double, double> measured_training_flops(LanguageModelImpl& model, const std::string& dir,
                                                  double bytes_per_step) {
  std::ifstream in(dir + "/metrics.jsonl");
  const double kept = model.counted_patch_size();
  double flops = 0, patch_steps = 0;
  int64_t prev = 0, steps = 0;
  for (std::string line; std::getline(in, line);) {
    const json m = json::parse(line, nullptr, false);
    if (m.is_discarded() || !m.contains("mean_bytes_per_patch") || !m["mean_bytes_per_patch"].is_number()) continue;
    const int64_t step = m["step"].get<int64_t>(), n = step - prev;
    const double patch = m["mean_bytes_per_patch"].get<double>();
    model.set_counted_patch_size(patch);
    flops += double(n) * bytes_per_step * 3 * model.forward_flops_per_byte();
    patch_steps += double(n) * patch;
    steps += n;
    prev = step;
  }
  model.set_counted_patch_size(kept);
  return {flops, steps > 0 ? patch_steps / double(steps) : NAN};
}

// metrics.jsonl: the validation curve (training's fixed validation windows) against cumulative training FLOPs,
// and the wall time of training summed over its sessions (elapsed_s restarts at every resume).
json training_curve(const std::string& dir, double flops_per_step, double* seconds) {
  std::ifstream in(dir + "/metrics.jsonl");
  json curve = json::array();
  double total = 0, segment = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const json m = json::parse(line, nullptr, false);
    if (m.is_discarded()) continue;
    const double el = m.value("elapsed_s", 0.0);
    if (el < segment) total += segment;  // a new session
    segment = el;
    if (m.contains("val_bpb") && m["val_bpb"].is_number())
      curve.push_back({{"step", m["step"]},
                       {"flops", double(m["step"].get<int64_t>()) * flops_per_step},
                       {"val_bpb", m["val_bpb"]}});
  }
  *seconds = total + segment;
  return curve;
}

// BLT entropy patching: the held-out bpb and FLOPs at other thresholds, each calibrated at inference for a
// target mean patch size on the held-out windows (the BLT paper lowers its threshold at inference too).
json threshold_sweep(BltImpl& blt, const PlanRun& run, const std::string& bytes, int64_t stride, int64_t batch) {
  json rows = json::array();
  if (blt.config().patching.mode != "entropy" || run.sweep_bytes_per_patch.empty()) return rows;
  const PatchingConfig trained = blt.config().patching;
  const int64_t T = blt.config().context, n = std::min<int64_t>(8, int64_t(bytes.size()) / T);
  auto x = torch::from_blob(const_cast<char*>(bytes.data()), {n, T}, torch::kUInt8).to(device_of(blt), torch::kLong);
  for (double target : run.sweep_bytes_per_patch) {
    json row{{"target_bytes_per_patch", target}};
    try {
      const double th = blt.calibrate_threshold(x, target);
      json stats = blt_patch_stats(blt, bytes);
      row["threshold"] = th;
      row["mean_bytes_per_patch"] = stats["mean_bytes_per_patch"];
      row["bpb"] = score_text(blt, nullptr, bytes, stride, batch) / std::log(2.0) / double(bytes.size());
      row["flops"] = flops_json(blt);
      row["flops"].erase("parts");
    } catch (const Error& e) {
      row["error"] = e.what();  // e.g. a size the entropies cannot reach; recorded, not fatal
    }
    rows.push_back(row);
  }
  blt.set_patching(trained);
  return rows;
}

// BLT's latent global transformer ablated at evaluation (BltImpl::GlobalAblation): held-out bpb with the
// global model skipped (patch queries straight to the decoder) and zeroed (no patch information at all),
// beside the intact model's: how much of the prediction the global model and patching carry.
json global_ablation(BltImpl& blt, const std::string& bytes, int64_t stride, int64_t batch) {
  struct Intact {  // the model is whole again however scoring ends
    BltImpl& blt;
    ~Intact() { blt.set_global_ablation(BltImpl::GlobalAblation::kNone); }
  } intact{blt};
  json out;
  const double n = double(bytes.size()) * std::log(2.0);
  for (const auto& [name, mode] : {std::pair{"skipped_bpb", BltImpl::GlobalAblation::kSkip},
                                   std::pair{"zeroed_bpb", BltImpl::GlobalAblation::kZero}}) {
    blt.set_global_ablation(mode);
    out[name] = score_text(blt, nullptr, bytes, stride, batch) / n;
  }
  return out;
}

}  // namespace

json make_record(const Plan& plan, const PlanRun& run, const TrainedRun& trained, const RunnerOptions& opt) {
  auto model = load_for_inference(trained.dir, opt.device, opt.threads);
  const ModelConfig cfg = model->config();
  const bool bpe = model->reads_tokens();
  std::unique_ptr<Tokenizer> tokenizer;
  if (bpe) tokenizer = std::make_unique<Tokenizer>(load_checkpoint_tokenizer(trained.dir, cfg.vocab_size));
  Corpus corpus(plan.datasets.at(run.data), plan.val_fraction);
  const std::string bytes = held_out_bytes(corpus, plan.eval.max_bytes);
  const int64_t T = cfg.context;
  // One protocol for every model: sliding windows moved by stride_fraction of the context (tokens for BPE).
  const int64_t stride = std::max<int64_t>(1, std::llround(plan.eval.stride_fraction * double(T)));

  json rec{{"name", run.name},
           {"model", cfg.model},
           {"data", run.data},
           {"data_paths", plan.datasets.at(run.data)},
           {"tags", run.tags},
           {"entry", run.entry},
           {"config", cfg.to_json()},
           {"seed", run.seed},
           {"plan", plan.name},
           {"quick", opt.quick},
           {"provenance", provenance(opt.device)},
           {"checkpoint", trained.dir}};
  if (!run.entropy_model.empty()) rec["entropy_model"] = run.entropy_model;

  // Held-out bits per byte.
  auto t0 = std::chrono::steady_clock::now();
  int64_t tokens = 0;
  const double nats = score_text(*model, tokenizer.get(), bytes, stride, plan.eval.batch, &tokens);
  json ev{{"bytes", int64_t(bytes.size())},
          {"bpb", nats / std::log(2.0) / double(bytes.size())},
          {"stride", stride},
          {"sliding", stride < T},
          {"stride_unit", bpe ? "tokens" : "bytes"},
          {"seconds", seconds_since(t0)}};
  if (bpe) {
    ev["tokens"] = tokens;
    ev["bytes_per_token"] = double(bytes.size()) / double(tokens);
    model->set_bytes_per_position(double(bytes.size()) / double(tokens));
  }
  rec["eval"] = ev;

  // Patches, then FLOPs per byte at the measured patch size (BLT) or bytes per token (bpe).
  // The sweep and patch statistics are BLT's analyses (its entropy patching).
  auto* blt = dynamic_cast<BltImpl*>(model.get());
  if (blt) {
    rec["sweep"] = threshold_sweep(*blt, run, bytes, stride, plan.eval.batch);
    rec["patches"] = blt_patch_stats(*blt, bytes);  // at the trained threshold; sets the FLOPs' patch size
    rec["global_ablation"] = global_ablation(*blt, bytes, stride, plan.eval.batch);
  } else if (model->fixed_patch_size() > 0) {
    rec["patches"] = {{"mode", "static"}, {"mean_bytes_per_patch", model->fixed_patch_size()}};
  } else if (model->learns_patches()) {
    rec["patches"] = learned_patch_stats(*model, bytes);  // sets the FLOPs' patch size
  }
  rec["flops"] = flops_json(*model);

  // Training: what the budget bought.
  double seconds = 0;
  json tr{{"budget", run.budget},
          {"steps", trained.steps},
          {"batch", run.train.batch},
          {"accum", run.train.accum},
          {"context", trained.context},
          {"flops_per_step", trained.train_flops_per_step},
          {"flops", double(trained.steps) * trained.train_flops_per_step}};
  if (model->dynamic_patches()) {  // the planned FLOPs assumed a patch size (8 windows', or targets); count the real
    const auto [measured, patch] =
        measured_training_flops(*model, trained.dir, double(run.train.batch * run.train.accum * T));
    if (measured > 0) {
      tr["planned_flops"] = tr["flops"];
      tr["flops"] = measured;
      tr["flops_per_step"] = measured / double(trained.steps);
      tr["mean_bytes_per_patch"] = patch;
    }
  }
  tr["curve"] = training_curve(trained.dir, tr["flops_per_step"].get<double>(), &seconds);
  const double bytes_per_unit = bpe ? ev["bytes_per_token"].get<double>() : 1.0;
  const double bytes_trained = double(trained.steps * run.train.batch * run.train.accum * T) * bytes_per_unit;
  tr["bytes"] = bytes_trained;
  tr["seconds"] = seconds;
  tr["bytes_per_s"] = seconds > 0 ? bytes_trained / seconds : 0;
  if (bpe) tr["bytes_note"] = "tokens trained x held-out bytes per token";
  rec["training"] = tr;

  if (plan.generation_bytes > 0 && !model->is_entropy_model())
    rec["generation"] = generation_json(plan, run, *model, tokenizer.get(), bytes);
  return rec;
}

namespace {

int64_t prompt_bytes(const Plan& plan, const LanguageModelImpl& model) {
  return std::min<int64_t>(plan.generation_prompt_bytes, std::max<int64_t>(1, model.config().context / 4));
}

double time_generation(const Plan& plan, const PlanRun& run, LanguageModelImpl& model, const Tokenizer* tokenizer,
                       const std::string& held_out) {
  return generation_bytes_per_s(model, tokenizer, held_out.substr(0, size_t(prompt_bytes(plan, model))),
                                plan.generation_bytes, uint64_t(run.seed));
}

json generation_fields(const Plan& plan, const LanguageModelImpl& model, const std::vector<double>& samples) {
  const Spread s = spread_of(samples);
  return {{"bytes", plan.generation_bytes},
          {"prompt_bytes", prompt_bytes(plan, model)},
          {"bytes_per_s", s.median},
          {"bytes_per_s_min", s.min},
          {"bytes_per_s_max", s.max},
          {"samples", s.samples},
          {"bytes_per_s_samples", samples},  // in timing order (retimed: one per round)
          {"seconds_per_8kb", s.median > 0 ? 8192.0 / s.median : 0},
          {"provenance", provenance(device_of(model))}};
}

}  // namespace

json generation_json(const Plan& plan, const PlanRun& run, LanguageModelImpl& model, const Tokenizer* tokenizer,
                     const std::string& held_out) {
  std::vector<double> samples;
  for (int i = 0; i < kGenerationRepeats; ++i)
    samples.push_back(time_generation(plan, run, model, tokenizer, held_out));
  return generation_fields(plan, model, samples);
}

std::vector<json> retime_records(const Plan& plan, const std::vector<RetimeRun>& runs, const RunnerOptions& opt) {
  struct Loaded {
    LanguageModel model;
    std::unique_ptr<Tokenizer> tokenizer;
    const std::string* held_out = nullptr;
    std::vector<double> samples;
  };
  std::map<std::string, std::string> held_out;  // data kind -> its held-out bytes (the prompts' source)
  std::vector<Loaded> loaded(runs.size());
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string dir = runs[i].dir + "/train";
    loaded[i].model = load_for_inference(dir, opt.device, opt.threads);
    const ModelConfig cfg = loaded[i].model->config();
    if (loaded[i].model->reads_tokens())
      loaded[i].tokenizer = std::make_unique<Tokenizer>(load_checkpoint_tokenizer(dir, cfg.vocab_size));
    const std::string& kind = runs[i].run->data;
    if (!held_out.count(kind))
      held_out[kind] = held_out_bytes(Corpus(plan.datasets.at(kind), plan.val_fraction), plan.eval.max_bytes);
    loaded[i].held_out = &held_out[kind];
  }
  for (int round = 0; round < kRetimeRounds; ++round)
    for (size_t i = 0; i < runs.size(); ++i)
      loaded[i].samples.push_back(
          time_generation(plan, *runs[i].run, *loaded[i].model, loaded[i].tokenizer.get(), *loaded[i].held_out));
  const json when = provenance(opt.device);  // one for all: the report pairs runs timed in the same rounds by it
  std::vector<json> out;
  for (size_t i = 0; i < runs.size(); ++i) {
    json rec = runs[i].record;
    json g = generation_fields(plan, *loaded[i].model, loaded[i].samples);
    g["provenance"] = when;
    g["retimed"] = true;
    g["interleaved_with"] = int64_t(runs.size());
    const json prev = rec.value("generation", json());
    if (!prev.is_null()) g["first_timing"] = prev.contains("first_timing") ? prev["first_timing"] : prev;
    rec["generation"] = g;
    out.push_back(rec);
  }
  return out;
}

}  // namespace bytelm::experiment
