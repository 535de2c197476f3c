// plan.cpp — reading and checking experiment plans (see plan.h). Unknown keys are errors, so a typo never
// silently leaves a setting at its default.
#include "experiment/plan.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "io/atomic_file.h"
#include "io/strict_json.h"
#include "util/error.h"

namespace bytelm::experiment {

namespace {

using json = nlohmann::json;

void only_keys(const json& j, const std::set<std::string>& keys, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": expected a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!keys.count(it.key())) throw Error(where + ": unknown key \"" + it.key() + "\"");
}

template <typename T>
T get(const json& j, const std::string& key, T fallback, const std::string& where) {
  if (!j.contains(key)) return fallback;
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    throw Error(where + ": \"" + key + "\" has the wrong type");
  }
}

int64_t positive(const json& j, const std::string& key, int64_t fallback, const std::string& where, int64_t min = 1) {
  const int64_t v = get<int64_t>(j, key, fallback, where);
  if (v < min) throw Error(where + ": \"" + key + "\" must be >= " + std::to_string(min));
  return v;
}

TrainSettings parse_train(const json& j, TrainSettings t, const std::string& where) {
  only_keys(j,
            {"batch", "accum", "warmup", "eval_points", "eval_batches", "lr", "min_lr_ratio", "weight_decay", "clip"},
            where);
  t.batch = positive(j, "batch", t.batch, where);
  t.accum = positive(j, "accum", t.accum, where);
  t.warmup = positive(j, "warmup", t.warmup, where, 0);
  t.eval_points = positive(j, "eval_points", t.eval_points, where);
  t.eval_batches = positive(j, "eval_batches", t.eval_batches, where);
  t.lr = get<double>(j, "lr", t.lr, where);
  t.min_lr_ratio = get<double>(j, "min_lr_ratio", t.min_lr_ratio, where);
  t.weight_decay = get<double>(j, "weight_decay", t.weight_decay, where);
  t.clip = get<double>(j, "clip", t.clip, where);
  if (!(t.lr > 0)) throw Error(where + ": \"lr\" must be > 0");
  return t;
}

json train_json(const TrainSettings& t) {
  return json{{"batch", t.batch},
              {"accum", t.accum},
              {"warmup", t.warmup},
              {"eval_points", t.eval_points},
              {"eval_batches", t.eval_batches},
              {"lr", t.lr},
              {"min_lr_ratio", t.min_lr_ratio},
              {"weight_decay", t.weight_decay},
              {"clip", t.clip}};
}

bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 64 || s[0] == '.') return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.'; });
}

PlanRun parse_run(const json& j, const Plan& plan, const TrainSettings& defaults, size_t index) {
  std::string where = "runs[" + std::to_string(index) + "]";
  only_keys(j,
            {"name", "model", "config", "data", "budget", "seed", "train", "entropy_model", "bytes_per_patch",
             "sweep_bytes_per_patch", "tags"},
            where);
  PlanRun r;
  r.name = get<std::string>(j, "name", "", where);
  if (!valid_name(r.name)) throw Error(where + ": \"name\" must be 1-64 characters of letters, digits, _ - .");
  where = "run " + r.name;
  r.model = get<std::string>(j, "model", "", where);
  static const std::set<std::string> models{"transformer", "megabyte", "entropy", "blt", "bpe", "hnet"};
  if (!models.count(r.model)) throw Error(where + ": \"model\" must be transformer, megabyte, entropy, blt or bpe");
  if (!j.contains("config") || !(j["config"].is_string() || j["config"].is_object()))
    throw Error(where + ": \"config\" (a preset name, a file, or a config object) is required");
  r.config = j["config"];
  r.data = get<std::string>(j, "data", "", where);
  if (!plan.datasets.count(r.data)) throw Error(where + ": \"data\" names no dataset of the plan: \"" + r.data + "\"");
  r.budget = get<double>(j, "budget", 0, where);
  if (!(r.budget > 0) || !std::isfinite(r.budget)) throw Error(where + ": \"budget\" (training FLOPs) must be > 0");
  r.seed = positive(j, "seed", plan.seed, where, 0);
  r.train = parse_train(j.value("train", json::object()), defaults, where + " train");
  r.entropy_model = get<std::string>(j, "entropy_model", "", where);
  r.bytes_per_patch = get<double>(j, "bytes_per_patch", 0, where);
  r.sweep_bytes_per_patch = get<std::vector<double>>(j, "sweep_bytes_per_patch", {}, where);
  r.tags = j.value("tags", json::object());
  if (!r.tags.is_object()) throw Error(where + ": \"tags\" must be an object");
  if (r.model != "blt" && (!r.entropy_model.empty() || r.bytes_per_patch > 0 || !r.sweep_bytes_per_patch.empty()))
    throw Error(where + ": entropy_model, bytes_per_patch and sweep_bytes_per_patch are for blt runs");
  if (!r.entropy_model.empty()) {
    const PlanRun* e = find_run(plan, r.entropy_model);
    if (!e || e->model != "entropy")
      throw Error(where + ": \"entropy_model\" must name an earlier run with model \"entropy\"");
    if (e->data != r.data) throw Error(where + ": its entropy model " + e->name + " trains on other data");
  }
  for (double b : r.sweep_bytes_per_patch)
    if (!(b > 1)) throw Error(where + ": \"sweep_bytes_per_patch\" values must be > 1");
  r.entry = json{{"model", r.model},
                 {"config", r.config},
                 {"data", plan.datasets.at(r.data)},
                 {"budget", r.budget},
                 {"seed", r.seed},
                 {"train", train_json(r.train)},
                 {"entropy_model", r.entropy_model},
                 {"bytes_per_patch", r.bytes_per_patch},
                 {"val_fraction", plan.val_fraction}};
  return r;
}

void parse_robustness(const json& j, Plan& plan) {
  const std::string where = "robustness";
  only_keys(j, {"data", "runs", "noise", "max_bytes", "cute"}, where);
  auto& r = plan.robustness;
  r.enabled = true;
  r.data = get<std::string>(j, "data", "", where);
  if (!plan.datasets.count(r.data)) throw Error(where + ": \"data\" names no dataset of the plan");
  r.runs = get<std::vector<std::string>>(j, "runs", {}, where);
  for (const auto& n : r.runs)
    if (!find_run(plan, n)) throw Error(where + ": \"runs\" names no run of the plan: " + n);
  r.noise = get<std::vector<std::string>>(j, "noise", r.noise, where);
  static const std::set<std::string> kinds{"uppercase", "randomcase", "drop", "repeat", "antspeak"};
  for (const auto& n : r.noise)
    if (!kinds.count(n))
      throw Error(where + ": unknown noise \"" + n + "\" (uppercase randomcase drop repeat antspeak)");
  r.max_bytes = positive(j, "max_bytes", r.max_bytes, where, 256);
  const json c = j.value("cute", json::object());
  r.cute = !c.is_boolean() || c.get<bool>();
  if (c.is_object()) {
    only_keys(c, {"words", "items", "shots", "tasks"}, where + " cute");
    auto& s = r.cute_settings;
    s.words = get<std::string>(c, "words", s.words, where + " cute");
    s.items = positive(c, "items", s.items, where + " cute");
    s.shots = positive(c, "shots", s.shots, where + " cute", 0);
    s.tasks = get<std::vector<std::string>>(c, "tasks", s.tasks, where + " cute");
    static const std::set<std::string> tasks{"spell", "reverse", "substitute", "swap", "insert", "delete"};
    for (const auto& t : s.tasks)
      if (!tasks.count(t)) throw Error(where + ": unknown CUTE task \"" + t + "\"");
  }
}

}  // namespace

const PlanRun* find_run(const Plan& plan, const std::string& name) {
  for (const auto& r : plan.runs)
    if (r.name == name) return &r;
  return nullptr;
}

Plan parse_plan(const json& j, const std::string& where) {
  try {
    only_keys(j,
              {"name", "description", "seed", "val_fraction", "datasets", "train", "eval", "generation", "compressors",
               "runs", "robustness"},
              where);
    Plan plan;
    plan.source = j;
    plan.name = get<std::string>(j, "name", "plan", where);
    plan.description = get<std::string>(j, "description", "", where);
    plan.seed = positive(j, "seed", plan.seed, where, 0);
    plan.val_fraction = get<double>(j, "val_fraction", plan.val_fraction, where);
    if (!(plan.val_fraction > 0 && plan.val_fraction < 1)) throw Error(where + ": \"val_fraction\" must be in (0, 1)");
    if (!j.contains("datasets") || !j["datasets"].is_object() || j["datasets"].empty())
      throw Error(where + ": \"datasets\" (name -> list of files or directories) is required");
    for (auto it = j["datasets"].begin(); it != j["datasets"].end(); ++it) {
      if (!valid_name(it.key())) throw Error(where + ": dataset name \"" + it.key() + "\" is not a plain name");
      auto paths = get<std::vector<std::string>>(j["datasets"], it.key(), {}, where + " datasets");
      if (paths.empty()) throw Error(where + ": dataset \"" + it.key() + "\" lists no paths");
      plan.datasets[it.key()] = paths;
    }
    const TrainSettings defaults = parse_train(j.value("train", json::object()), TrainSettings{}, where + " train");
    const json e = j.value("eval", json::object());
    only_keys(e, {"stride_fraction", "max_bytes", "batch"}, where + " eval");
    plan.eval.stride_fraction = get<double>(e, "stride_fraction", plan.eval.stride_fraction, where + " eval");
    if (!(plan.eval.stride_fraction > 0 && plan.eval.stride_fraction <= 1))
      throw Error(where + ": eval \"stride_fraction\" must be in (0, 1]");
    plan.eval.max_bytes = positive(e, "max_bytes", plan.eval.max_bytes, where + " eval", 0);
    plan.eval.batch = positive(e, "batch", plan.eval.batch, where + " eval");
    const json g = j.value("generation", json::object());
    only_keys(g, {"bytes", "prompt_bytes"}, where + " generation");
    plan.generation_bytes = positive(g, "bytes", plan.generation_bytes, where + " generation", 0);
    plan.generation_prompt_bytes = positive(g, "prompt_bytes", plan.generation_prompt_bytes, where + " generation");
    plan.compressors = get<bool>(j, "compressors", true, where);
    if (!j.contains("runs") || !j["runs"].is_array() || j["runs"].empty())
      throw Error(where + ": \"runs\" is required");
    for (size_t i = 0; i < j["runs"].size(); ++i) {
      PlanRun r = parse_run(j["runs"][i], plan, defaults, i);
      if (find_run(plan, r.name)) throw Error(where + ": two runs are named " + r.name);
      plan.runs.push_back(std::move(r));
    }
    if (j.contains("robustness")) parse_robustness(j["robustness"], plan);
    return plan;
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (msg.rfind(where, 0) == 0) throw;
    throw Error(where + ": " + msg);
  }
}

Plan load_plan(const std::string& path) { return parse_plan(read_strict_json(path), path); }

void make_quick(Plan& plan) {
  for (auto& r : plan.runs) {
    r.budget /= 100;
    r.entry["budget"] = r.budget;
  }
  plan.eval.max_bytes = plan.eval.max_bytes == 0 ? 16384 : std::min<int64_t>(plan.eval.max_bytes, 16384);
  plan.generation_bytes = std::min<int64_t>(plan.generation_bytes, 32);
  plan.robustness.max_bytes = std::min<int64_t>(plan.robustness.max_bytes, 4096);
  plan.robustness.cute_settings.items = std::min<int64_t>(plan.robustness.cute_settings.items, 10);
  plan.name += " (--quick)";
}

}  // namespace bytelm::experiment
