// evaluate.cpp — bits per byte over whole files (see evaluate.h).
#include "train/evaluate.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "data/corpus.h"
#include "io/atomic_file.h"
#include "model/checkpoint.h"
#include "util/device.h"
#include "util/error.h"
#include "util/platform.h"

namespace bytelm {

double score_bytes(LanguageModelImpl& model, const uint8_t* data, int64_t n, int64_t batch, const std::string& device,
                   bool bf16) {
  torch::NoGradGuard no_grad;
  AutocastScope autocast(torch::Device(device), bf16);
  const int64_t T = model.config().context;
  double total = 0;
  auto score = [&](int64_t offset, int64_t rows, int64_t len) {
    auto x = torch::from_blob(const_cast<uint8_t*>(data + offset), {rows, len}, torch::kUInt8).to(torch::kLong).to(device);
    auto logits = model.forward(x);
    total += torch::nn::functional::cross_entropy(
                 logits.reshape({-1, logits.size(-1)}).to(torch::kFloat32), x.reshape({-1}) + model.vocab_offset(),
                 torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                 .item<double>();
  };
  const int64_t full = n / T;
  for (int64_t w = 0; w < full; w += batch) score(w * T, std::min(batch, full - w), T);
  if (n % T) score(full * T, 1, n % T);
  return total;
}

double validation_bpb(LanguageModelImpl& model, const Corpus& corpus, int64_t batch, int64_t eval_batches,
                      const std::string& device, bool bf16) {
  const int64_t len = std::min<int64_t>(model.config().context, corpus.size(Split::Val));
  if (len < 1) return NAN;
  torch::NoGradGuard no_grad;
  const torch::Device dev(device);
  auto total = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(dev));
  std::vector<uint8_t> buf(size_t(batch * len));
  for (int64_t i = 0; i < eval_batches; ++i) {
    corpus.sample(Split::Val, 0x5eed, uint64_t(i), batch, len, buf.data());
    auto x = torch::from_blob(buf.data(), {batch, len}, torch::kUInt8).to(dev, torch::kLong);
    AutocastScope autocast(dev, bf16);
    total += byte_loss(model.forward(x), x, model.vocab_offset());
  }
  return total.item<double>() / double(eval_batches) / std::log(2.0);
}

std::shared_ptr<LanguageModelImpl> load_for_inference(const std::string& ckpt, const std::string& device, int threads) {
  check_device(device);
  setup_threads(threads);
  warn_if_slow_blas();
  auto model = load_model(ckpt);
  model->to(torch::Device(device));
  model->eval();
  return model;
}

namespace {

// The run record (trainer.json) of a checkpoint, or null if it has none (a model saved without training
// state) or it cannot be read.
nlohmann::json run_record(const std::string& ckpt) {
  std::error_code ec;
  if (!std::filesystem::exists(ckpt + "/trainer.json", ec)) return nullptr;
  try {
    return nlohmann::json::parse(read_file(ckpt + "/trainer.json"));
  } catch (const std::exception&) {
    return nullptr;
  }
}

Split parse_split(const std::string& s) {
  if (s == "all") return Split::All;
  if (s == "train") return Split::Train;
  if (s == "val") return Split::Val;
  throw Error("--split " + s + ": expected all, train or val");
}

}  // namespace

int run_eval(const EvalOptions& opt) {
  if (opt.batch < 1) throw Error("--batch must be >= 1");
  if (opt.threads < 0) throw Error("--threads must be >= 0 (0 = all cores)");
  const Split split = parse_split(opt.split);
  if (opt.val_fraction >= 1) throw Error("--val-fraction must be in [0, 1)");
  // --split train|val: the run's data and val fraction (trainer.json) unless given.
  const nlohmann::json record = split == Split::All ? nlohmann::json(nullptr) : run_record(opt.ckpt);
  std::vector<std::string> data = opt.data;
  if (data.empty() && record.is_object() && record.contains("data")) data = record["data"].get<std::vector<std::string>>();
  if (data.empty()) throw Error(split == Split::All ? "--data is required"
                                                    : "--data is required (the checkpoint has no run record naming its data)");
  double val_fraction = opt.val_fraction;
  if (val_fraction < 0) val_fraction = record.is_object() ? record.value("val_fraction", 0.05) : 0.05;
  if (split == Split::All) val_fraction = 0;
  const bool bf16 = use_bf16(opt.precision, opt.device);
  auto model = load_for_inference(opt.ckpt, opt.device, opt.threads);
  Corpus corpus(data, val_fraction);
  const bool tty = stderr_is_tty() && !opt.json;
  nlohmann::json files = nlohmann::json::array();
  double total_nats = 0;
  int64_t total_bytes = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t all = corpus.size(split);
  if (all == 0) throw Error("--split " + opt.split + ": the split is empty (--val-fraction " + std::to_string(val_fraction) + ")");
  for (const auto& f : corpus.files(split)) {
    double nats = score_bytes(*model, f.data, f.size, opt.batch, opt.device, bf16);
    total_nats += nats;
    total_bytes += f.size;
    double bpb = nats / std::log(2.0) / double(f.size);
    files.push_back({{"path", f.path}, {"bytes", f.size}, {"bpb", bpb}});
    if (tty) {
      double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      double eta = el / total_bytes * (all - total_bytes);
      std::fprintf(stderr, "\r%lld/%lld bytes  bpb %.4f  eta %s   ", (long long)total_bytes, (long long)all,
                   total_nats / std::log(2.0) / total_bytes, format_duration(eta).c_str());
    }
  }
  if (tty) std::fprintf(stderr, "\n");
  const double bpb = total_nats / std::log(2.0) / double(total_bytes);
  // Training's own validation number (the same windows it scored), when the run record says how.
  double run_val = NAN;
  if (split == Split::Val && record.is_object() && record.contains("batch") && record.contains("eval_batches"))
    run_val = validation_bpb(*model, corpus, record["batch"].get<int64_t>(), record["eval_batches"].get<int64_t>(),
                             opt.device, bf16);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (opt.json) {
    nlohmann::json j{{"ckpt", opt.ckpt}, {"split", opt.split}, {"bytes", total_bytes}, {"bpb", bpb},
                     {"nats_per_byte", total_nats / double(total_bytes)}, {"files", files}, {"seconds", secs},
                     {"device", opt.device}, {"precision", bf16 ? "bf16" : "fp32"}};
    if (split != Split::All) j["val_fraction"] = val_fraction;
    if (!std::isnan(run_val)) j["run_val_bpb"] = run_val;
    std::printf("%s\n", j.dump().c_str());
  } else {
    if (files.size() > 1 && files.size() <= 50)
      for (const auto& f : files)
        std::printf("%-60s %10lld bytes  %.4f bpb\n", f["path"].get<std::string>().c_str(),
                    (long long)f["bytes"].get<int64_t>(), f["bpb"].get<double>());
    std::printf("total: %lld bytes in %zu files, %.4f bits per byte, %.4f nats per byte (%.1fs)\n",
                (long long)total_bytes, files.size(), bpb, total_nats / double(total_bytes), secs);
    if (!std::isnan(run_val))
      std::printf("training's validation windows: %.4f bits per byte (the val_bpb in metrics.jsonl)\n", run_val);
  }
  return 0;
}

}  // namespace bytelm
