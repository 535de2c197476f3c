// window_loss.h — the losses every whole-file evaluation shares (internal to src/eval): a window's
// cross-entropy, and consecutive windows of the context over a sequence of ids (bytes or tokens).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>

#include "model/model.h"
#include "util/device.h"

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

}  // namespace bytelm
