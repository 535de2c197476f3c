// info.cpp — `bytelm info`: parameters and FLOPs per byte by part, following the MEGABYTE paper's accounting
// (forward = 2 x matmul parameters applied per byte + attention; training = 3 x forward); and the presets.
#include <memory>

#include <torch/torch.h>

#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "data/corpus.h"
#include "model/checkpoint.h"
#include "model/factory.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace bytelm::cli {

namespace {

struct InfoOptions {
  std::string ckpt, config, model;
  std::vector<std::string> data;  // BLT: measure the mean patch size on this corpus (else the config's patch_size);
                                  // bpe with --ckpt: measure bytes per token (else kNominalBytesPerToken)
  bool json = false;
  bool presets = false;   // list the presets (configs/) instead
  bool markdown = false;  // with presets: the README's Markdown table
};

// What a preset is for, from its name's suffix.
std::string preset_use(const std::string& name) {
  const std::string suffix = name.substr(name.rfind('_') + 1);  // mb_conv_demo: demo
  if (suffix == "tiny") return "tests";
  if (suffix == "demo") return "CPU demo";
  if (suffix == "cpu") return "CPU bench";
  if (suffix == "s") return "GPU bench";
  return "";
}

std::string millions(int64_t n) {
  if (n < 0) return "?";
  char buf[32];
  std::snprintf(buf, sizeof buf, n < 1000000 ? "%.2fM" : "%.1fM", double(n) / 1e6);
  return buf;
}

int run_presets(const InfoOptions& opt) {
  const auto presets = list_presets();
  if (opt.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& p : presets)
      j.push_back({{"name", p.name}, {"model", p.model}, {"context", p.context}, {"params", p.params}});
    std::printf("%s\n", j.dump().c_str());
  } else if (opt.markdown) {
    // The README's preset table (tests/docs/test_readme checks that the README shows exactly this).
    std::printf("| preset | use | model | context | shape | parameters |\n|---|---|---|---|---|---|\n");
    for (const auto& p : presets)
      std::printf("| %s | %s | %s | %lld | %s | %s |\n", p.name.c_str(), preset_use(p.name).c_str(), p.model.c_str(),
                  (long long)p.context, describe_shape(load_config(p.path, "")).c_str(), millions(p.params).c_str());
  } else {
    std::printf("%s", presets_table().c_str());
  }
  return 0;
}

int run(const InfoOptions& opt) {
  if (opt.presets) return run_presets(opt);
  if (opt.ckpt.empty() && opt.config.empty()) throw Error("info needs --ckpt or --config (or --presets)");
  ModelConfig cfg = opt.ckpt.empty() ? load_config(opt.config, opt.model) : load_checkpoint_config(opt.ckpt);
  auto model = opt.ckpt.empty() ? make_model(cfg) : load_model(opt.ckpt);
  const bool dynamic = model->dynamic_patches(), tokens = model->reads_tokens();
  if (dynamic && !opt.data.empty()) {
    // FLOPs per byte of dynamic patches (BLT) follow the mean patch size: measure it on 8 windows of the corpus.
    Corpus corpus(opt.data, 0.0);
    const int64_t len = std::min<int64_t>(cfg.context, corpus.size(Split::All)), rows = 8;
    std::vector<uint8_t> buf(size_t(rows * len));
    corpus.sample(Split::All, 1, 0, rows, len, buf.data());
    auto x = torch::from_blob(buf.data(), {rows, len}, torch::kUInt8).to(torch::kLong);
    model->count_patches_of(x);
  }
  bool measured_bpt = false;
  if (tokens && !opt.data.empty() && !opt.ckpt.empty()) {
    // FLOPs per byte of a token model = per token / bytes per token: measure it on (up to 4 MB of) the data.
    Corpus corpus(opt.data, 0.0);
    const Tokenizer tok = load_checkpoint_tokenizer(opt.ckpt, cfg.vocab_size);
    int64_t bytes = 0, pieces = 0;
    for (const auto& f : corpus.files(Split::All)) {
      if (bytes >= (4 << 20)) break;
      const int64_t n = std::min<int64_t>(f.size, (4 << 20) - bytes);
      pieces += int64_t(tok.encode(f.data, n).size());
      bytes += n;
    }
    if (pieces > 0) model->set_bytes_per_position(double(bytes) / double(pieces)), measured_bpt = true;
  }
  auto parts = model->flops();
  // Parts reported beside the model but not counted (BLT's entropy model): their parameters are shown
  // apart from the model's, and the checkpoint's total holds both.
  const int64_t params = model->counted_params(), beside = model->num_params() - params;
  nlohmann::json j{{"model", cfg.model}, {"config", cfg.to_json()}, {"params", params}};
  if (beside > 0) {
    j["entropy_model_params"] = beside;
    j["checkpoint_params"] = model->num_params();
  }
  if (dynamic) j["mean_patch_size"] = model->counted_patch_size();
  if (tokens) {
    j["vocab_size"] = cfg.vocab_size;
    j["bytes_per_token"] = model->bytes_per_position();
    j["bytes_per_token_measured"] = measured_bpt;
    j["forward_flops_per_token"] = model->forward_flops_per_position();
  }
  double fwd = 0;
  nlohmann::json jp = nlohmann::json::array();
  for (const auto& p : parts) {
    double f = p.matmul_flops + p.attention_flops;
    if (p.counted) fwd += f;
    jp.push_back({{"part", p.name},
                  {"params", p.params},
                  {"matmul_params", p.matmul_params},
                  {"matmul_flops_per_byte", p.matmul_flops},
                  {"attention_flops_per_byte", p.attention_flops},
                  {"forward_flops_per_byte", f},
                  {"train_flops_per_byte", 3 * f},
                  {"counted", p.counted}});
  }
  j["parts"] = jp;
  j["forward_flops_per_byte"] = fwd;
  j["train_flops_per_byte"] = 3 * fwd;
  if (opt.json) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s: %.2fM parameters, context %lld %s", cfg.model.c_str(), params / 1e6, (long long)cfg.context,
              tokens ? "tokens" : "bytes");
  if (tokens)
    std::printf(", vocabulary %lld, %.4g forward FLOPs per token, %.3f bytes per token (%s)", (long long)cfg.vocab_size,
                model->forward_flops_per_position(), model->bytes_per_position(),
                measured_bpt ? "measured" : "nominal; measure with --ckpt and --data");
  if (beside > 0)
    std::printf(" (+ %.2fM in the entropy model = %.2fM in the checkpoint)", beside / 1e6, model->num_params() / 1e6);
  if (const int64_t P = model->fixed_patch_size(); P > 0)
    std::printf(", patch size %lld (%lld patches)", (long long)P, (long long)(cfg.context / P));
  if (dynamic)
    std::printf(", %s (%s)", model->describe_patches().c_str(),
                opt.data.empty() ? "as configured; measure with --data" : "measured");
  std::printf("\n%-8s %12s %14s %16s %16s %16s %16s\n", "part", "params", "matmul params", "matmul FLOP/B",
              "attn FLOP/B", "forward FLOP/B", "train FLOP/B");
  for (const auto& p : jp)
    std::printf("%-8s %12lld %14lld %16.4g %16.4g %16.4g %16.4g\n", p["part"].get<std::string>().c_str(),
                (long long)p["params"].get<int64_t>(), (long long)p["matmul_params"].get<int64_t>(),
                p["matmul_flops_per_byte"].get<double>(), p["attention_flops_per_byte"].get<double>(),
                p["forward_flops_per_byte"].get<double>(), p["train_flops_per_byte"].get<double>());
  std::printf("%-8s %12lld %14s %16s %16s %16.4g %16.4g\n", "total", (long long)params, "", "", "", fwd, 3 * fwd);
  if (beside > 0)
    std::printf(
        "(total without the entropy model, which runs beside BLT: %lld parameters, not counted in FLOPs; "
        "the checkpoint holds %lld)\n",
        (long long)beside, (long long)model->num_params());
  return 0;
}

}  // namespace

Command add_info(CLI::App& app) {
  auto o = std::make_shared<InfoOptions>();
  auto* i = app.add_subcommand("info", "Parameters and FLOPs per byte, split by part");
  auto* ic = i->add_option("--ckpt", o->ckpt, "Checkpoint directory");
  i->add_option("--config", o->config, "Config JSON file or preset name")->excludes(ic);
  i->add_option("--model", o->model, "Model for a preset name: transformer | megabyte | entropy | blt | bpe");
  i->add_option("--data", o->data,
                "BLT: measure the mean patch size; bpe (with --ckpt): bytes per token, on these files (FLOPs per byte "
                "depend on it)")
      ->expected(1, -1);
  i->add_flag("--json", o->json, "Print one JSON object instead of text");
  i->add_flag("--presets", o->presets,
              "List the presets (name, model, context, parameters); with --json or --markdown");
  i->add_flag("--markdown", o->markdown, "With --presets: the README's Markdown table");
  i->footer(presets_footer());
  return {i, [o] { return run(*o); }};
}

}  // namespace bytelm::cli
