// config_hnet.cpp — H-Net's config: JSON in and out, validation and the parameter lower bound.
// {"model": "hnet", "context": T, "stages": [{"encoder": {stack}, "decoder": {stack}, "target_ratio": N,
//   "lr_multiplier": λ}, ...], "main": {stack}, "ratio_loss_weight": α, "main_lr_multiplier": λ}
#include <cmath>
#include <sstream>

#include "model/config_json.h"
#include "util/error.h"

namespace bytelm {

using nlohmann::json;

namespace {

// The paper's heuristic multipliers (appendix C), outer stage first: 2.0, 1.5, then 1.0 inward.
double default_lr_multiplier(size_t stage) { return stage == 0 ? 2.0 : stage == 1 ? 1.5 : 1.0; }

HnetStageConfig stage_from_json(const json& j, size_t s) {
  const std::string name = "stages[" + std::to_string(s) + "]";
  if (!j.is_object()) throw Error("config: '" + name + "' must be an object");
  check_keys(j, {"encoder", "decoder", "target_ratio", "lr_multiplier"}, " in '" + name + "'");
  if (!j.contains("encoder") || !j.contains("decoder"))
    throw Error("config: '" + name + "' needs 'encoder' and 'decoder' objects");
  HnetStageConfig st;
  st.encoder = stack_from_json(j.at("encoder"), name + ".encoder", 10000.0);
  st.decoder = stack_from_json(j.at("decoder"), name + ".decoder", 10000.0);
  st.target_ratio = get_num(j, "target_ratio", s == 0 ? 6.0 : 3.0);
  st.lr_multiplier = get_num(j, "lr_multiplier", default_lr_multiplier(s));
  return st;
}

std::string number(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

void check_range(double v, double lo, double hi, const std::string& what) {
  if (!(v >= lo && v <= hi)) throw Error("config: " + what + " must be in [" + number(lo) + ", " + number(hi) + "]");
}

}  // namespace

ModelConfig hnet_from_json(const json& j) {
  check_keys(
      j, {"model", "context", "stages", "main", "ratio_loss_weight", "main_lr_multiplier", "init_std", "norm_eps"}, "");
  ModelConfig c;
  c.model = "hnet";
  c.context = get_int(j, "context", 0, true);
  if (!j.contains("stages") || !j.at("stages").is_array() || j.at("stages").empty())
    throw Error("config: hnet needs 'stages', a list of 1 to 3 stage objects");
  if (j.at("stages").size() > 3) throw Error("config: hnet has at most 3 stages");
  for (size_t s = 0; s < j.at("stages").size(); ++s) c.stages.push_back(stage_from_json(j.at("stages")[s], s));
  if (!j.contains("main")) throw Error("config: hnet needs a 'main' object (the main network)");
  c.global = stack_from_json(j.at("main"), "main", 10000.0);
  c.ratio_loss_weight = get_num(j, "ratio_loss_weight", c.ratio_loss_weight);
  c.main_lr_multiplier = get_num(j, "main_lr_multiplier", c.main_lr_multiplier);
  c.init_std = get_num(j, "init_std", c.init_std);
  c.norm_eps = get_num(j, "norm_eps", c.norm_eps);
  c.validate();
  return c;
}

json hnet_to_json(const ModelConfig& c) {
  json stages = json::array();
  for (const auto& st : c.stages)
    stages.push_back({{"encoder", stack_to_json(st.encoder)},
                      {"decoder", stack_to_json(st.decoder)},
                      {"target_ratio", st.target_ratio},
                      {"lr_multiplier", st.lr_multiplier}});
  return json{{"model", "hnet"},
              {"context", c.context},
              {"stages", stages},
              {"main", stack_to_json(c.global)},
              {"ratio_loss_weight", c.ratio_loss_weight},
              {"main_lr_multiplier", c.main_lr_multiplier},
              {"init_std", c.init_std},
              {"norm_eps", c.norm_eps}};
}

void validate_hnet(const ModelConfig& c) {
  if (c.stages.empty() || c.stages.size() > 3) throw Error("config: hnet has 1 to 3 stages");
  int64_t outer_width = 0;
  for (size_t s = 0; s < c.stages.size(); ++s) {
    const auto& st = c.stages[s];
    const std::string name = "stages[" + std::to_string(s) + "]";
    validate_stack(st.encoder, name + ".encoder");
    validate_stack(st.decoder, name + ".decoder");
    if (st.encoder.width != st.decoder.width)
      throw Error("config: " + name + ".encoder.width and .decoder.width must be equal (the stage's width)");
    if (st.encoder.width < outer_width)
      throw Error("config: " + name + ".encoder.width must be >= the outer stage's (widths grow inward)");
    outer_width = st.encoder.width;
    check_range(st.target_ratio, 1.5, 64, name + ".target_ratio");
    check_range(st.lr_multiplier, 1e-3, 100, name + ".lr_multiplier");
  }
  validate_stack(c.global, "main");
  if (c.global.width < outer_width)
    throw Error("config: main.width must be >= the innermost stage's width (widths grow inward)");
  check_range(c.ratio_loss_weight, 0, 10, "ratio_loss_weight");
  check_range(c.main_lr_multiplier, 1e-3, 100, "main_lr_multiplier");
}

double hnet_min_params(const ModelConfig& c) {
  double n = stack_matrix_params(c.global) + 257.0 * double(c.stages.front().encoder.width);  // + byte embeddings
  for (const auto& st : c.stages) {
    const double w = double(st.encoder.width);
    n += stack_matrix_params(st.encoder) + stack_matrix_params(st.decoder) + 3 * w * w;  // + routing q, k, residual
  }
  return n;
}

}  // namespace bytelm
