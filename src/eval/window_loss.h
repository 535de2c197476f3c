// window_loss.h — the losses every whole-file evaluation shares (internal to src/eval): a window's
// cross-entropy, and consecutive windows of the context over a sequence of ids (bytes or tokens).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "model/model.h"
#include "util/device.h"
#include "util/error.h"

namespace bytelm {

// Cross-entropy (nats, fp32) of the model's prediction of every id of x (B, T) int64: (B, T).
torch::Tensor window_nll(LanguageModelImpl& model, const torch::Tensor& x);
// The same summed over the window.
double window_nats(LanguageModelImpl& model, const torch::Tensor& x);

// Summed nats of n ids scored in consecutive windows of the context, `batch` windows per forward pass
// (the last, shorter window alone). window(offset, rows, len): ids [offset, offset + rows * len) as a
// (rows, len) int64 tensor on the model's device.
double score_consecutive(LanguageModelImpl& model, int64_t n, int64_t batch,
                         const std::function<torch::Tensor(int64_t, int64_t, int64_t)>& window);

// score_consecutive over an array of n ids in memory (uint8 bytes or int32 token ids), without gradients and
// under bf16 autocast when asked.
template <typename Id>
double score_id_array(LanguageModelImpl& model, const Id* ids, int64_t n, int64_t batch, const std::string& device,
                      bool bf16) {
  static_assert(std::is_same<Id, uint8_t>::value || std::is_same<Id, int32_t>::value, "bytes or token ids");
  torch::NoGradGuard no_grad;
  AutocastScope autocast(torch::Device(device), bf16);
  const auto dtype = std::is_same<Id, uint8_t>::value ? torch::kUInt8 : torch::kInt32;
  return score_consecutive(model, n, batch, [&](int64_t offset, int64_t rows, int64_t len) {
    return torch::from_blob(const_cast<Id*>(ids + offset), {rows, len}, dtype).to(device, torch::kLong);
  });
}

// Sliding windows over an array of n ids (score_bytes_sliding, for bytes or token ids): the first window
// scores all T ids, each later one the `stride` ids after those already scored, ending where they end (the
// last may overlap more), so every id is scored once. stride in [1, T]; Error otherwise.
template <typename Id>
double score_sliding_array(LanguageModelImpl& model, const Id* ids, int64_t n, int64_t stride, int64_t batch,
                           const std::string& device, bool bf16) {
  const int64_t T = model.config().context;
  if (stride < 1 || stride > T) throw Error("--stride must be in [1, " + std::to_string(T) + "] (the context)");
  if (n <= T) return score_id_array(model, ids, n, batch, device, bf16);
  std::vector<std::pair<int64_t, int64_t>> windows{{0, 0}};  // (start, first id it scores)
  for (int64_t done = T; done < n;) {
    const int64_t end = std::min(done + stride, n);
    windows.emplace_back(end - T, done);
    done = end;
  }
  torch::NoGradGuard no_grad;
  AutocastScope autocast(torch::Device(device), bf16);
  const auto dtype = std::is_same<Id, uint8_t>::value ? torch::kUInt8 : torch::kInt32;
  double total = 0;
  for (size_t w = 0; w < windows.size(); w += size_t(batch)) {
    const int64_t rows = std::min<int64_t>(batch, int64_t(windows.size() - w));
    std::vector<Id> buf(size_t(rows * T));
    auto keep = torch::zeros({rows, T}, torch::kBool);  // (rows, T): the ids this window scores
    for (int64_t r = 0; r < rows; ++r) {
      const auto [start, first] = windows[w + size_t(r)];
      std::copy(ids + start, ids + start + T, buf.begin() + r * T);
      keep[r].narrow(0, first - start, T - (first - start)).fill_(true);
    }
    auto x = torch::from_blob(buf.data(), {rows, T}, dtype).to(device, torch::kLong);
    auto nll = window_nll(model, x);  // (rows, T)
    total += nll.masked_select(keep.to(nll.device())).sum().template item<double>();
  }
  return total;
}

}  // namespace bytelm
