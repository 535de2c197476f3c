// window_loss.h — the losses every whole-file evaluation shares (internal to src/eval): a window's
// cross-entropy, and consecutive windows of the context over a sequence of ids (bytes or tokens).
#pragma once
#include <torch/torch.h>

#include <functional>

#include "model/model.h"

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

}  // namespace bytelm
