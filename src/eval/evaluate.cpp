// evaluate.cpp — bits per byte over whole files and validation windows (see evaluate.h).
#include "eval/evaluate.h"

#include <torch/torch.h>

#include <cmath>

#include "data/corpus.h"
#include "eval/window_loss.h"
#include "model/model.h"
#include "util/device.h"
#include "util/error.h"

namespace bytelm {

namespace {
// Cross-entropy of the model's predictions of x (B, T), reduced as asked (summing inside the loss keeps
// whole-file scores bit-identical to what earlier versions printed).
torch::Tensor nll(LanguageModelImpl& model, const torch::Tensor& x,
                  torch::nn::functional::CrossEntropyFuncOptions opt) {
  auto logits = model.forward(x);  // (B, T, V)
  return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}).to(torch::kFloat32),
                                              x.reshape({-1}) + model.vocab_offset(), opt);
}
}  // namespace

torch::Tensor window_nll(LanguageModelImpl& model, const torch::Tensor& x) {
  return nll(model, x, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone)).view(x.sizes());
}

double window_nats(LanguageModelImpl& model, const torch::Tensor& x) {
  return nll(model, x, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)).item<double>();
}

double score_consecutive(LanguageModelImpl& model, int64_t n, int64_t batch,
                         const std::function<torch::Tensor(int64_t, int64_t, int64_t)>& window) {
  const int64_t T = model.config().context;
  double total = 0;
  const int64_t full = n / T;
  for (int64_t w = 0; w < full; w += batch) total += window_nats(model, window(w * T, std::min(batch, full - w), T));
  if (n % T) total += window_nats(model, window(full * T, 1, n % T));
  return total;
}

double score_bytes(LanguageModelImpl& model, const uint8_t* data, int64_t n, int64_t batch, const std::string& device,
                   bool bf16) {
  return score_id_array(model, data, n, batch, device, bf16);
}

double score_bytes_sliding(LanguageModelImpl& model, const uint8_t* data, int64_t n, int64_t stride, int64_t batch,
                           const std::string& device, bool bf16) {
  return score_sliding_array(model, data, n, stride, batch, device, bf16);
}

double validation_bpb(LanguageModelImpl& model, const Corpus& corpus, int64_t batch, int64_t eval_batches,
                      const std::string& device, bool bf16, int64_t first_row) {
  const int64_t len = std::min<int64_t>(model.config().context, corpus.size(Split::Val));
  if (len < 1) return NAN;
  torch::NoGradGuard no_grad;
  const torch::Device dev(device);
  auto total = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(dev));
  std::vector<uint8_t> buf(size_t(batch * len));
  for (int64_t i = 0; i < eval_batches; ++i) {
    corpus.sample(Split::Val, 0x5eed, uint64_t(i), batch, len, buf.data(), first_row);
    auto x = torch::from_blob(buf.data(), {batch, len}, torch::kUInt8).to(dev, torch::kLong);
    AutocastScope autocast(dev, bf16);
    total += byte_loss(model.forward(x), x, model.vocab_offset());
  }
  return total.item<double>() / double(eval_batches) / std::log(2.0);
}

std::vector<FileScore> score_files(LanguageModelImpl& model, const Corpus& corpus, Split split, int64_t batch,
                                   const std::string& device, bool bf16,
                                   const std::function<void(int64_t, int64_t)>& progress, int64_t stride, bool strided,
                                   bool strided_late) {
  std::vector<FileScore> out;
  const int64_t all = corpus.size(split);
  int64_t done = 0;
  for (const auto& f : corpus.files(split)) {
    out.push_back({f.path, f.size,
                   strided      ? score_bytes_strided(model, f.data, f.size, stride, batch, device, bf16, strided_late)
                   : stride > 0 ? score_bytes_sliding(model, f.data, f.size, stride, batch, device, bf16)
                                : score_bytes(model, f.data, f.size, batch, device, bf16)});
    done += f.size;
    if (progress) progress(done, all);
  }
  return out;
}

}  // namespace bytelm
