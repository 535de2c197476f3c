// info.cpp — `bytelm info` (see info.h).
#include "train/info.h"

#include <torch/torch.h>

#include <cstdio>

#include <nlohmann/json.hpp>

#include "model/checkpoint.h"
#include "util/error.h"

namespace bytelm {

int run_info(const InfoOptions& opt) {
  ModelConfig cfg = opt.ckpt.empty() ? load_config(opt.config, opt.model) : load_checkpoint_config(opt.ckpt);
  auto model = opt.ckpt.empty() ? make_model(cfg) : load_model(opt.ckpt);
  auto parts = model->flops();
  nlohmann::json j{{"model", cfg.model}, {"config", cfg.to_json()}, {"params", model->num_params()}};
  double fwd = 0;
  nlohmann::json jp = nlohmann::json::array();
  for (const auto& p : parts) {
    double f = p.matmul_flops + p.attention_flops;
    if (p.counted) fwd += f;
    jp.push_back({{"part", p.name}, {"params", p.params}, {"matmul_params", p.matmul_params},
                  {"matmul_flops_per_byte", p.matmul_flops}, {"attention_flops_per_byte", p.attention_flops},
                  {"forward_flops_per_byte", f}, {"train_flops_per_byte", 3 * f}, {"counted", p.counted}});
  }
  j["parts"] = jp;
  j["forward_flops_per_byte"] = fwd;
  j["train_flops_per_byte"] = 3 * fwd;
  if (opt.json) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s: %.2fM parameters, context %lld bytes", cfg.model.c_str(), model->num_params() / 1e6,
              (long long)cfg.context);
  if (cfg.model == "megabyte")
    std::printf(", patch size %lld (%lld patches)", (long long)cfg.patch_size, (long long)(cfg.context / cfg.patch_size));
  std::printf("\n%-8s %12s %14s %16s %16s %16s %16s\n", "part", "params", "matmul params", "matmul FLOP/B",
              "attn FLOP/B", "forward FLOP/B", "train FLOP/B");
  for (const auto& p : jp)
    std::printf("%-8s %12lld %14lld %16.4g %16.4g %16.4g %16.4g\n", p["part"].get<std::string>().c_str(),
                (long long)p["params"].get<int64_t>(), (long long)p["matmul_params"].get<int64_t>(),
                p["matmul_flops_per_byte"].get<double>(), p["attention_flops_per_byte"].get<double>(),
                p["forward_flops_per_byte"].get<double>(), p["train_flops_per_byte"].get<double>());
  std::printf("%-8s %12lld %14s %16s %16s %16.4g %16.4g\n", "total", (long long)model->num_params(), "", "", "", fwd,
              3 * fwd);
  return 0;
}

}  // namespace bytelm
