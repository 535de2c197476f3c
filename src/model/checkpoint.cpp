// checkpoint.cpp — checkpoint directories (see checkpoint.h).
#include "model/checkpoint.h"
#include "model/factory.h"

#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "io/strict_json.h"
#include "util/error.h"
#include "util/platform.h"
#include "util/text.h"

namespace bytelm {

namespace {

DType to_dtype(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32:
      return DType::F32;
    case torch::kBFloat16:
      return DType::BF16;
    case torch::kFloat16:
      return DType::F16;
    case torch::kInt64:
      return DType::I64;
    default:
      throw Error(std::string("cannot save tensors of type ") + c10::toString(t));
  }
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

void save_tensors(const std::string& path, const NamedTensors& tensors,
                  const std::map<std::string, std::string>& metadata) {
  std::vector<torch::Tensor> keep;  // CPU contiguous copies that own the bytes while writing
  std::vector<TensorToWrite> out;
  keep.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    keep.push_back(t.detach().to(torch::kCPU).contiguous());
    const auto& c = keep.back();
    out.push_back({name, to_dtype(c.scalar_type()), c.sizes().vec(), c.data_ptr()});
  }
  write_safetensors(path, out, metadata);
}

std::map<std::string, std::string> load_tensors_into(const std::string& path, const NamedTensors& targets) {
  return load_tensors_from(SafetensorsReader(path), targets);
}

std::map<std::string, std::string> load_tensors_from(const SafetensorsReader& reader, const NamedTensors& targets) {
  const std::string& path = reader.path();
  std::map<std::string, bool> wanted;
  for (const auto& [name, t] : targets) wanted[name] = true;
  for (const auto& [name, info] : reader.tensors())
    if (!wanted.count(name)) throw Error(path + ": unexpected tensor '" + name + "' (written for another config?)");
  torch::NoGradGuard no_grad;
  for (const auto& [name, target] : targets) {
    const TensorInfo& info = reader.info(name);
    if (info.shape != target.sizes().vec())
      throw Error(path + ": tensor '" + name + "' has shape " + shape_str(info.shape) + ", config needs " +
                  shape_str(target.sizes().vec()));
    torch::ScalarType st;
    switch (info.dtype) {
      case DType::F32:
        st = torch::kFloat32;
        break;
      case DType::BF16:
        st = torch::kBFloat16;
        break;
      case DType::F16:
        st = torch::kFloat16;
        break;
      case DType::I64:
        st = torch::kInt64;
        break;
      default:
        throw Error(path + ": tensor '" + name + "' has unsupported dtype " + dtype_name(info.dtype));
    }
    bool float_ok = at::isFloatingType(st) && at::isFloatingType(target.scalar_type());
    if (st != target.scalar_type() && !float_ok)
      throw Error(path + ": tensor '" + name + "' has dtype " + dtype_name(info.dtype) + ", expected " +
                  c10::toString(target.scalar_type()));
    auto src = torch::from_blob(const_cast<uint8_t*>(reader.data(name)), info.shape, torch::TensorOptions().dtype(st));
    if (at::isFloatingType(st)) {
      const int64_t bad = src.numel() - torch::isfinite(src).sum().item<int64_t>();
      if (bad > 0)
        throw Error(path + ": tensor '" + name + "' holds " + std::to_string(bad) + " NaN or infinite values (of " +
                    std::to_string(src.numel()) + ")");
    }
    target.copy_(src);  // converts dtype and device
  }
  return reader.metadata();
}

NamedTensors named_parameters_of(const torch::nn::Module& module) {
  NamedTensors out;
  for (const auto& p : module.named_parameters()) out.emplace_back(p.key(), p.value());
  return out;
}

NamedTensors trainable_parameters_of(const torch::nn::Module& module) {
  NamedTensors out;
  for (const auto& p : module.named_parameters())
    if (p.value().requires_grad()) out.emplace_back(p.key(), p.value());
  return out;
}

void save_model(const std::string& dir, const LanguageModelImpl& model,
                const std::map<std::string, std::string>& metadata) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create directory (" + ec.message() + ")");
  write_file_atomic(dir + "/config.json", model.config().to_json().dump(2) + "\n");
  auto meta = metadata;
  meta["format"] = "bytelm";
  meta["model"] = model.config().model;
  save_tensors(dir + "/model.safetensors", named_parameters_of(model), meta);
}

ModelConfig load_checkpoint_config(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) throw Error(dir + ": not a checkpoint directory");
  const std::string path = dir + "/config.json";
  if (!std::filesystem::exists(path, ec)) throw Error(dir + ": checkpoint has no config.json");
  const nlohmann::json j = read_strict_json(path);
  try {
    return ModelConfig::from_json(j);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

void check_weights_fit(const ModelConfig& cfg, const SafetensorsReader& weights, const std::string& config_path) {
  const auto& meta = weights.metadata();
  const auto format = meta.find("format"), model = meta.find("model");
  if (format != meta.end() && format->second == "bytelm" && model != meta.end() && model->second != cfg.model)
    throw Error(config_path + ": 'model' is " + cfg.model + " but " + weights.path() + " holds a " +
                printable_line(model->second) + " model's weights");
  double held = 0;
  for (const auto& [name, info] : weights.tensors()) {
    double n = 1;
    for (int64_t d : info.shape) n *= double(d);
    held += n;
  }
  if (cfg.min_params() > held) {
    char buf[160];
    std::snprintf(buf, sizeof buf, " describes at least %.4g parameters (%s) but %s holds %.4g", cfg.min_params(),
                  describe_shape(cfg).c_str(), "the weights file", held);
    throw Error(config_path + buf + ": the config does not belong to these weights");
  }
}

LanguageModel load_model(const std::string& dir) {
  auto cfg = load_checkpoint_config(dir);
  const std::string path = dir + "/model.safetensors";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error(dir + ": checkpoint has no model.safetensors");
  // Everything that can be checked without the model is checked before it is built (allocated).
  SafetensorsReader weights(path);
  check_weights_fit(cfg, weights, dir + "/config.json");
  auto model = make_model(cfg);
  load_tensors_from(weights, named_parameters_of(*model));
  return model;
}

LanguageModel load_for_inference(const std::string& ckpt, const std::string& device, int threads) {
  check_device(device);
  setup_threads(threads);
  auto model = load_model(ckpt);
  model->to(torch::Device(device));
  model->eval();
  return model;
}

}  // namespace bytelm
