// checkpoint.cpp — checkpoint directories (see checkpoint.h).
#include "model/checkpoint.h"
#include "model/factory.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "util/error.h"
#include "util/platform.h"

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
  SafetensorsReader reader(path);
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
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": invalid JSON (" + std::string(e.what()) + ")");
  }
  try {
    return ModelConfig::from_json(j);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

LanguageModel load_model(const std::string& dir) {
  auto cfg = load_checkpoint_config(dir);
  const std::string path = dir + "/model.safetensors";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error(dir + ": checkpoint has no model.safetensors");
  auto model = make_model(cfg);
  load_tensors_into(path, named_parameters_of(*model));
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
