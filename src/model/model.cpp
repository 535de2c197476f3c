// model.cpp — the model interface's shared parts (parameter counts, FLOPs, static-step defaults) and the loss.
#include "model/model.h"

#include <cstdio>

#include "util/error.h"

namespace bytelm {

int64_t LanguageModelImpl::num_params() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

int64_t LanguageModelImpl::counted_params() const {
  int64_t beside = 0;
  for (const auto& part : flops())
    if (!part.counted) beside += part.params;
  return num_params() - beside;
}

int64_t LanguageModelImpl::static_prepare(const torch::Tensor&) {
  throw Error(cfg_.model + " has no static-shape decoding step");
}
void LanguageModelImpl::rewind(int64_t) {
  throw Error("a " + cfg_.model + " model cannot rewind its decoding caches (no speculative decoding)");
}

void LanguageModelImpl::check_rewind(int64_t bytes) const {
  if (bytes < 0 || bytes > decoded_)
    throw Error("rewind: " + std::to_string(bytes) + " bytes, but " + std::to_string(decoded_) + " were fed");
}

void LanguageModelImpl::rows_begin(int64_t) {
  throw Error("a " + cfg_.model + " model decodes a batch at one shared position (no row decoding)");
}
torch::Tensor LanguageModelImpl::rows_feed(const std::vector<RowFeed>&, bool) {
  throw Error("a " + cfg_.model + " model decodes a batch at one shared position (no row decoding)");
}
int64_t LanguageModelImpl::rows_keep(int64_t, int64_t, int64_t) { return kRowNotStarted; }

std::vector<int64_t> LanguageModelImpl::check_row_feeds(const std::vector<RowFeed>& feeds, int64_t max_ids,
                                                        const char* unit, int64_t vocab) const {
  std::vector<int64_t> after;
  std::vector<bool> seen(row_decoded_.size(), false);
  for (const auto& f : feeds) {
    if (f.slot < 0 || f.slot >= int64_t(row_decoded_.size()) || seen[size_t(f.slot)])
      throw Error("row decoding: slot " + std::to_string(f.slot) + " is out of range or named twice");
    seen[size_t(f.slot)] = true;
    const int64_t before = f.restart ? 0 : row_decoded_[size_t(f.slot)];
    if (before == kRowNotStarted) throw Error("row decoding: slot " + std::to_string(f.slot) + " was never started");
    if (!f.restart && f.ids.empty()) throw Error("row decoding: an empty feed for slot " + std::to_string(f.slot));
    for (int64_t id : f.ids)
      if (id < 0 || id >= vocab) throw Error("row decoding: id " + std::to_string(id) + " is out of range");
    after.push_back(before + int64_t(f.ids.size()));
    if (after.back() > max_ids)
      throw Error("decoding past the context of " + std::to_string(cfg_.context) + " " + unit);
  }
  return after;
}

void LanguageModelImpl::static_compute(int64_t) { throw Error(cfg_.model + " has no static-shape decoding step"); }

int64_t static_span(int64_t needed, int64_t capacity) {
  int64_t span = 64;
  while (span < needed) span *= 2;
  return std::min(span, capacity);
}

double LanguageModelImpl::forward_flops_per_byte() const {
  double total = 0;
  for (const auto& part : flops())
    if (part.counted) total += part.matmul_flops + part.attention_flops;
  return total;
}

// Floats a pre-norm SwiGLU block keeps per position for backward, per unit of width: two norms, q, k, v,
// attention output, projection, and the MLP's gate, up, activation and product (hidden ~ 8/3 width).
// Counted low (16, not the ~20 of a full tally) so the memory check never refuses a run that fits.
constexpr double kFloatsPerWidth = 16;

double stack_activation_floats(const StackConfig& s, double positions_per_byte) {
  return double(s.layers) * double(s.width) * positions_per_byte * kFloatsPerWidth;
}

double LanguageModelImpl::activation_floats_per_byte() const {
  // Logits, their softmax and its gradient per position (token models: over their vocabulary), one stack.
  return 3.0 * double(reads_tokens() ? cfg_.vocab_size : kByteVocab) + stack_activation_floats(cfg_.global, 1.0);
}

void LanguageModelImpl::attach_entropy_model(const LanguageModelImpl&) {
  throw Error("--entropy-model: a " + cfg_.model + " model has no patcher to load it into");
}

double LanguageModelImpl::calibrate_patching(const torch::Tensor&, double) {
  throw Error("--bytes-per-patch: a " + cfg_.model + " model has no entropy patching to calibrate");
}

std::string LanguageModelImpl::describe_patches() const {
  char line[160];
  std::snprintf(line, sizeof line, "%s patching, mean patch size %.2f bytes", cfg_.patching.mode.c_str(),
                counted_patch_size());
  return line;
}

torch::Tensor byte_loss(const torch::Tensor& logits, const torch::Tensor& bytes, int64_t offset) {
  return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}).to(torch::kFloat32),
                                              bytes.reshape({-1}) + offset);
}

}  // namespace bytelm
