// runner.cpp — the plan loop of `bytelm experiment run` (see runner.h): for each run, the steps that spend its
// budget (from the model's own FLOPs per byte), training through the library's run_train (fresh or resumed),
// then the record (record.cpp); then the compressor rows and the robustness measurements (extras.cpp).
#include "experiment/runner.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "data/corpus.h"
#include "experiment/extras.h"
#include "experiment/plan.h"
#include "experiment/record.h"
#include "git_version.h"
#include "io/atomic_file.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/factory.h"
#include "train/run_dir.h"
#include "train/trainer.h"
#include "util/error.h"

namespace bytelm::experiment {

namespace fs = std::filesystem;
using json = nlohmann::json;

int64_t steps_for_budget(double budget, double train_flops_per_step) {
  if (!(train_flops_per_step > 0)) throw Error("a model reports no FLOPs per step");
  return std::max<int64_t>(2, std::llround(budget / train_flops_per_step));
}

json provenance(const std::string& device) {
  std::string cpu = "unknown";
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);)
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  std::string load;
  std::ifstream("/proc/loadavg") >> load;
  char when[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return json{{"commit", BYTELM_GIT_COMMIT},
              {"cpu", cpu},
              {"cores", std::thread::hardware_concurrency()},
              {"torch_threads", torch::get_num_threads()},
              {"load_average_1min", load},
              {"time_utc", when},
              {"device", device}};
}

namespace {

// The config argument of `bytelm train`: a preset or file as given, or an inline object written to the run.
std::string config_arg(const PlanRun& run, const std::string& run_dir) {
  if (run.config.is_string()) return run.config.get<std::string>();
  json c = run.config;
  if (!c.contains("model") && !c.contains("model_type")) c["model"] = run.model;
  const std::string path = run_dir + "/config.json";
  write_file_atomic(path, c.dump(1) + "\n");
  return path;
}

// Forward FLOPs per training window unit (a byte; a token for bpe) as training will count them. BLT: at the
// mean patch size of 8 training windows (the windows training calibrates on), after loading the entropy model
// and calibrating the threshold like training does.
double planned_forward_flops(const PlanRun& run, const ModelConfig& cfg, const Corpus& corpus,
                             const std::string& entropy_dir) {
  torch::NoGradGuard no_grad;
  auto model = make_model(cfg);
  if (!model->dynamic_patches()) return model->forward_flops_per_position();  // per token for token models
  // Learned patches (H-Net) start far from where training takes them: plan at the targets; the record counts
  // the patches training really made.
  if (model->learns_patches()) return model->forward_flops_per_byte();
  if (!entropy_dir.empty()) model->attach_entropy_model(*load_model(entropy_dir));
  const int64_t rows = 8, T = cfg.context;
  std::vector<uint8_t> buf(size_t(rows * T));
  corpus.sample(Split::Train, uint64_t(run.seed) ^ 0xca1b, 0, rows, T, buf.data());
  auto x = torch::from_blob(buf.data(), {rows, T}, torch::kUInt8).to(torch::kLong);
  if (run.bytes_per_patch > 0) model->calibrate_patching(x, run.bytes_per_patch);
  model->count_patches_of(x);
  return model->forward_flops_per_byte();
}

bool file_exists(const std::string& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

// Trains one run to its budget (or resumes it). Returns false if training stopped early (--exit-after or
// Ctrl-C), with the exit code in *code.
bool train_run(const Plan& plan, const PlanRun& run, const RunnerOptions& opt, TrainedRun* trained, int* code) {
  const std::string run_dir = opt.out + "/runs/" + run.name;
  fs::create_directories(run_dir);
  trained->dir = run_dir + "/train";
  const std::string entry_path = run_dir + "/entry.json";
  if (file_exists(entry_path) && json::parse(read_file(entry_path)) != run.entry)
    throw Error("run " + run.name + " changed in the plan since it started (" + entry_path + "); remove " + run_dir +
                " to run it anew, or use another --out");
  write_file_atomic(entry_path, run.entry.dump(2) + "\n");
  const std::string config = config_arg(run, run_dir);
  const ModelConfig cfg = load_config(config, run.model);
  const std::vector<std::string>& data = plan.datasets.at(run.data);
  Corpus corpus(data, plan.val_fraction);
  const std::string entropy_dir = run.entropy_model.empty() ? "" : opt.out + "/runs/" + run.entropy_model + "/train";
  const double forward = planned_forward_flops(run, cfg, corpus, entropy_dir);
  const double per_step = 3 * forward * double(run.train.batch * run.train.accum * cfg.context);
  trained->steps = steps_for_budget(run.budget, per_step);
  trained->train_flops_per_step = per_step;
  trained->context = cfg.context;

  TrainOptions t;
  t.out = trained->dir;
  t.threads = opt.threads;
  t.device = opt.device;
  t.exit_after = opt.exit_after;
  const bool resume = file_exists(trained->dir + "/trainer.json");
  if (resume) {
    t.resume = true;
  } else {
    t.model = run.model;
    t.config = config;
    t.data = data;
    t.entropy_model = entropy_dir;
    t.bytes_per_patch = run.bytes_per_patch;
    t.steps = trained->steps;
    t.batch = run.train.batch;
    t.accum = run.train.accum;
    t.lr = run.train.lr;
    t.min_lr_ratio = run.train.min_lr_ratio;
    t.warmup = std::min(run.train.warmup, trained->steps / 10);  // at most 10% of a (short) schedule warms up
    t.weight_decay = run.train.weight_decay;
    t.clip = run.train.clip;
    t.seed = run.seed;
    t.precision = opt.precision;
    t.val_fraction = plan.val_fraction;
    t.eval_every = std::max<int64_t>(1, trained->steps / run.train.eval_points);
    t.eval_batches = run.train.eval_batches;
    t.ckpt_every = t.eval_every;
    t.log_every = std::max<int64_t>(1, trained->steps / 50);
  }
  std::fprintf(stderr, "experiment: run %s: %s %s on %s, %.3g FLOPs = %lld steps of %.3g FLOPs%s\n", run.name.c_str(),
               run.model.c_str(), run.config.is_string() ? run.config.get<std::string>().c_str() : "(inline config)",
               run.data.c_str(), run.budget, (long long)trained->steps, per_step, resume ? " (resuming)" : "");
  *code = run_train(t);
  int64_t step = 0;
  read_run_record(trained->dir, &step);
  return *code == 0 && step >= trained->steps;
}

json done_record(const PlanRun& run, const std::string& record_path) {
  const json rec = json::parse(read_file(record_path));
  if (rec.value("entry", json()) != run.entry)
    throw Error("run " + run.name + " changed in the plan since it was recorded (" + record_path +
                "); remove its directory to run it anew");
  return rec;
}

bool selected(const RunnerOptions& opt, const std::string& name) {
  return opt.only.empty() || std::find(opt.only.begin(), opt.only.end(), name) != opt.only.end();
}

// --retime: generation speeds of the done runs measured again, interleaved on the same machine and binary
// (timings taken beside other work, or before a speed-up, then compare fairly).
int retime_plan(const Plan& plan, const RunnerOptions& opt) {
  std::vector<RetimeRun> runs;
  for (const auto& run : plan.runs) {
    const std::string run_dir = opt.out + "/runs/" + run.name, record_path = run_dir + "/record.json";
    if (!selected(opt, run.name)) continue;
    if (!file_exists(record_path)) {
      std::fprintf(stderr, "experiment: run %s is not done; not retimed\n", run.name.c_str());
      continue;
    }
    json rec = done_record(run, record_path);
    if (rec.contains("generation")) runs.push_back({&run, run_dir, rec});
  }
  std::fprintf(stderr, "experiment: timing the generation of %zu runs, %d interleaved rounds\n", runs.size(),
               kRetimeRounds);
  const std::vector<json> recs = retime_records(plan, runs, opt);
  for (size_t i = 0; i < runs.size(); ++i) {
    write_file_atomic(runs[i].dir + "/record.json", recs[i].dump(2) + "\n");
    std::fprintf(stderr, "experiment: run %s: generation %.0f bytes/s (first timed %.0f)\n", runs[i].run->name.c_str(),
                 recs[i]["generation"]["bytes_per_s"].get<double>(),
                 recs[i]["generation"]["first_timing"].value("bytes_per_s", 0.0));
  }
  std::fprintf(stderr, "experiment: %zu runs retimed in %s\n", runs.size(), opt.out.c_str());
  return 0;
}

}  // namespace

int run_plan(const std::string& plan_path, const RunnerOptions& opt) {
  if (opt.out.empty()) throw Error("--out is required");
  Plan plan = load_plan(plan_path);
  if (opt.quick) make_quick(plan);
  for (const auto& n : opt.only)
    if (!find_run(plan, n)) throw Error("--only " + n + ": no such run in " + plan_path);
  if (opt.retime) return retime_plan(plan, opt);
  fs::create_directories(opt.out + "/runs");
  json stored = plan.source;
  stored["quick"] = opt.quick;
  write_file_atomic(opt.out + "/plan.json", stored.dump(2) + "\n");
  int done = 0, skipped = 0;
  for (const auto& run : plan.runs) {
    if (!selected(opt, run.name)) continue;
    const std::string record_path = opt.out + "/runs/" + run.name + "/record.json";
    if (file_exists(record_path)) {
      done_record(run, record_path);
      std::fprintf(stderr, "experiment: run %s is done (%s); skipped\n", run.name.c_str(), record_path.c_str());
      ++skipped;
      continue;
    }
    if (!run.entropy_model.empty() && !file_exists(opt.out + "/runs/" + run.entropy_model + "/record.json"))
      throw Error("run " + run.name + " needs its entropy model, run " + run.entropy_model +
                  ", to be done first (add it to --only)");
    TrainedRun trained;
    int code = 0;
    if (!train_run(plan, run, opt, &trained, &code)) {
      std::fprintf(stderr, "experiment: stopped during run %s; run the same command again to resume\n",
                   run.name.c_str());
      return code == 0 ? 0 : code;
    }
    json rec = make_record(plan, run, trained, opt);
    write_file_atomic(record_path, rec.dump(2) + "\n");
    std::fprintf(stderr, "experiment: run %s: held-out %.4f bpb, %.3g training FLOPs\n", run.name.c_str(),
                 rec["eval"]["bpb"].get<double>(), rec["training"]["flops"].get<double>());
    ++done;
  }
  if (plan.compressors) write_compressor_rows(plan, opt);
  if (plan.robustness.enabled) run_robustness(plan, opt);
  std::fprintf(stderr,
               "experiment: %d runs done now, %d already done; results in %s (bytelm experiment report %s "
               "--out REPORT_DIR)\n",
               done, skipped, opt.out.c_str(), opt.out.c_str());
  return 0;
}

}  // namespace bytelm::experiment
