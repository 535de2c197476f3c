// evaluate.cpp — bits per byte over whole files (see evaluate.h).
#include "train/evaluate.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "data/corpus.h"
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

std::shared_ptr<LanguageModelImpl> load_for_inference(const std::string& ckpt, const std::string& device, int threads) {
  check_device(device);
  setup_threads(threads);
  warn_if_slow_blas();
  auto model = load_model(ckpt);
  model->to(torch::Device(device));
  model->eval();
  return model;
}

int run_eval(const EvalOptions& opt) {
  if (opt.batch < 1) throw Error("--batch must be >= 1");
  if (opt.data.empty()) throw Error("--data is required");
  const bool bf16 = use_bf16(opt.precision, opt.device);
  auto model = load_for_inference(opt.ckpt, opt.device, opt.threads);
  Corpus corpus(opt.data, 0.0);
  const bool tty = stderr_is_tty() && !opt.json;
  nlohmann::json files = nlohmann::json::array();
  double total_nats = 0;
  int64_t total_bytes = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t all = corpus.size(Split::All);
  for (const auto& f : corpus.files(Split::All)) {
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
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (opt.json) {
    nlohmann::json j{{"ckpt", opt.ckpt}, {"bytes", total_bytes}, {"bpb", bpb}, {"files", files}, {"seconds", secs},
                     {"device", opt.device}, {"precision", bf16 ? "bf16" : "fp32"}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    if (files.size() > 1 && files.size() <= 50)
      for (const auto& f : files)
        std::printf("%-60s %10lld bytes  %.4f bpb\n", f["path"].get<std::string>().c_str(),
                    (long long)f["bytes"].get<int64_t>(), f["bpb"].get<double>());
    std::printf("total: %lld bytes in %zu files, %.4f bits per byte (%.1fs)\n", (long long)total_bytes, files.size(),
                bpb, secs);
  }
  return 0;
}

}  // namespace bytelm
