// train_options.cpp — range checks, the run record and --resume merging (see train_options.h).
#include "train/train_options.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace bytelm {

namespace {

using json = nlohmann::json;

void need(bool ok, const std::string& what) {
  if (!ok) throw Error(what);
}

// One recorded setting: its flag (without dashes), its key in trainer.json, and how to read/write it.
struct Field {
  const char* flag;
  const char* key;
  bool adjustable;  // may change on --resume (accepted and recorded)
  json (*get)(const TrainOptions&);
  void (*set)(TrainOptions&, const json&);
};

#define BYTELM_FIELD(flag, member, adjustable)                                       \
  Field {                                                                            \
    flag, #member, adjustable, [](const TrainOptions& o) { return json(o.member); }, \
        [](TrainOptions& o, const json& j) { j.get_to(o.member); }                   \
  }

const std::vector<Field>& fields() {
  static const std::vector<Field> all{
      BYTELM_FIELD("model", model, false),
      BYTELM_FIELD("config", config, false),
      BYTELM_FIELD("data", data, false),
      BYTELM_FIELD("entropy-model", entropy_model, false),
      BYTELM_FIELD("bytes-per-patch", bytes_per_patch, false),
      BYTELM_FIELD("tokenizer", tokenizer, false),
      BYTELM_FIELD("tokenizer-type", tokenizer_type, false),
      BYTELM_FIELD("batch", batch, false),
      BYTELM_FIELD("accum", accum, false),
      BYTELM_FIELD("lr", lr, false),
      BYTELM_FIELD("min-lr-ratio", min_lr_ratio, false),
      BYTELM_FIELD("warmup", warmup, false),
      BYTELM_FIELD("weight-decay", weight_decay, false),
      BYTELM_FIELD("beta1", beta1, false),
      BYTELM_FIELD("beta2", beta2, false),
      BYTELM_FIELD("adam-eps", adam_eps, false),
      BYTELM_FIELD("clip", clip, false),
      BYTELM_FIELD("seed", seed, false),
      BYTELM_FIELD("val-fraction", val_fraction, false),
      BYTELM_FIELD("precision", precision, false),
      BYTELM_FIELD("steps", steps, true),
      BYTELM_FIELD("eval-every", eval_every, true),
      BYTELM_FIELD("eval-batches", eval_batches, true),
      BYTELM_FIELD("ckpt-every", ckpt_every, true),
      BYTELM_FIELD("log-every", log_every, true),
      // The thread count can change the bits a CPU run computes (a BLAS may split a sum between threads,
      // depending on the CPU's kernels: seen on AMD EPYC), so --resume keeps the run's unless told otherwise.
      BYTELM_FIELD("threads", threads, true),
  };
  return all;
}
#undef BYTELM_FIELD

// Data paths compare by what they name, so "data/corpus" and "./data/corpus/" are the same.
std::vector<std::string> canonical(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const auto& p : paths) {
    std::error_code ec;
    auto c = std::filesystem::weakly_canonical(std::filesystem::absolute(p, ec), ec);
    if (!ec && c.filename().empty()) c = c.parent_path();  // "dir/" names "dir"
    out.push_back(ec ? p : c.string());
  }
  return out;
}

bool same_setting(const Field& f, const json& a, const json& b) {
  if (std::string(f.key) == "data")
    return canonical(a.get<std::vector<std::string>>()) == canonical(b.get<std::vector<std::string>>());
  return a == b;
}

bool empty_value(const json& v) { return v.is_null() || ((v.is_string() || v.is_array()) && v.empty()); }

std::string shown(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string s;
    for (const auto& e : v) s += (s.empty() ? "" : " ") + (e.is_string() ? e.get<std::string>() : e.dump());
    return s;
  }
  return v.dump();
}

}  // namespace

void check_train_options(const TrainOptions& o) {
  need(!o.out.empty(), "--out is required");
  need(o.steps >= 1, "--steps must be >= 1");
  need(o.batch >= 1, "--batch must be >= 1");
  need(o.tokenizer_type == "bpe" || o.tokenizer_type == "unigram", "--tokenizer-type must be bpe or unigram");
  need(o.accum >= 1, "--accum must be >= 1");
  need(o.lr > 0 && o.lr < 10, "--lr must be in (0, 10)");
  need(o.min_lr_ratio >= 0 && o.min_lr_ratio <= 1, "--min-lr-ratio must be in [0, 1]");
  need(o.warmup >= 0, "--warmup must be >= 0");
  need(o.weight_decay >= 0, "--weight-decay must be >= 0");
  need(o.beta1 >= 0 && o.beta1 < 1, "--beta1 must be in [0, 1)");
  need(o.beta2 >= 0 && o.beta2 < 1, "--beta2 must be in [0, 1)");
  need(o.adam_eps > 0, "--adam-eps must be > 0");
  need(o.clip >= 0, "--clip must be >= 0");
  need(o.seed >= 0, "--seed must be >= 0");
  need(o.val_fraction >= 0 && o.val_fraction < 1, "--val-fraction must be in [0, 1)");
  need(o.eval_every >= 0, "--eval-every must be >= 0");
  need(o.ckpt_every >= 0, "--ckpt-every must be >= 0");
  need(o.exit_after >= 0, "--exit-after must be >= 0");
  need(o.log_every >= 1, "--log-every must be >= 1");
  need(o.eval_batches >= 1, "--eval-batches must be >= 1");
  need(o.threads >= 0, "--threads must be >= 0 (0 = all cores)");
  need(o.peak_flops >= 0, "--peak-flops must be >= 0");
  need(o.dist_timeout > 0 && o.dist_timeout <= 86400, "--dist-timeout must be in (0, 86400] seconds");
  need(o.bytes_per_patch == 0 || o.bytes_per_patch >= 1, "--bytes-per-patch must be >= 1 (or 0 = off)");
  need(o.precision == "auto" || o.precision == "fp32" || o.precision == "bf16",
       "--precision " + o.precision + ": expected fp32, bf16 or auto");
}

json train_record(const TrainOptions& o) {
  json j = json::object();
  for (const auto& f : fields()) j[f.key] = f.get(o);
  return j;
}

TrainOptions merge_resume(const TrainOptions& cli, const json& record, int64_t step) {
  TrainOptions merged = cli;
  for (const auto& f : fields()) {
    const bool given = cli.given.count(f.flag) > 0;
    const json mine = f.get(cli);
    if (!record.contains(f.key) || empty_value(record.at(f.key))) continue;  // older record: keep the CLI's
    const json& stored = record.at(f.key);
    if (std::string(f.key) == "config" || std::string(f.key) == "model") {
      f.set(merged, stored);  // the config itself is checked against config.json by the trainer
      continue;
    }
    if (given && !f.adjustable && !same_setting(f, mine, stored))
      throw Error("--" + std::string(f.flag) + " " + shown(mine) + " differs from the run's " + shown(stored) +
                  " (a resumed run keeps its settings; start a new --out to change it)");
    if (!given || !f.adjustable) {  // the record keeps its own spelling of a setting given again
      try {
        f.set(merged, stored);
      } catch (const json::exception& e) {
        throw Error("trainer.json: invalid '" + std::string(f.key) + "' (" + e.what() + ")");
      }
    }
  }
  if (cli.given.count("steps") && merged.steps < step)
    throw Error("--steps " + std::to_string(merged.steps) + " is below the run's step " + std::to_string(step) +
                " (--steps may only extend a run)");
  return merged;
}

std::string default_preset(const std::string& model) { return model.empty() ? "" : "demo"; }

}  // namespace bytelm
