// evaluate_strided.cpp — MEGABYTE's strided inference (paper section 6.2, Table 11): two passes over the
// data offset by P/2 bytes; for each byte the prediction made at the earlier position of its patch is kept
// (the paper keeps "the first P/2 predictions of each patch" of each pass: loss rises towards a patch's end).
// Shapes: B windows, T bytes (the context), P patch size.
#include <torch/torch.h>

#include <algorithm>

#include "eval/evaluate.h"
#include "model/model.h"
#include "util/device.h"
#include "util/error.h"

namespace bytelm {

namespace {

struct Window {
  int64_t start, first, len;  // bytes [start, start + len); scores [first, start + len)
};

// The windows score_bytes (stride 0: consecutive, the tail shorter) or score_bytes_sliding use.
std::vector<Window> windows_of(int64_t n, int64_t T, int64_t stride) {
  std::vector<Window> w;
  if (stride == 0 || n <= T) {
    for (int64_t s = 0; s < n; s += T) w.push_back({s, s, std::min(T, n - s)});
    return w;
  }
  w.push_back({0, 0, T});
  for (int64_t done = T; done < n;) {
    const int64_t end = std::min(done + stride, n);
    w.push_back({end - T, done, T});
    done = end;
  }
  return w;
}

// -log p of every byte of data[0, n) (nll) and its position in the patch of the window that scored it (pos).
void per_byte_scores(LanguageModelImpl& model, const uint8_t* data, int64_t n, int64_t stride, int64_t batch,
                     const std::string& device, std::vector<double>& nll, std::vector<int64_t>& pos) {
  const int64_t T = model.config().context, P = model.config().patch_size;
  nll.assign(size_t(n), 0.0);
  pos.assign(size_t(n), 0);
  const auto windows = windows_of(n, T, stride);
  for (size_t w = 0; w < windows.size();) {
    size_t e = w;  // windows [w, e) of one length go in one forward pass
    while (e < windows.size() && int64_t(e - w) < batch && windows[e].len == windows[w].len) ++e;
    const int64_t rows = int64_t(e - w), len = windows[w].len;
    std::vector<uint8_t> buf(size_t(rows * len));
    for (int64_t r = 0; r < rows; ++r) std::copy_n(data + windows[w + size_t(r)].start, len, buf.begin() + r * len);
    auto x = torch::from_blob(buf.data(), {rows, len}, torch::kUInt8).to(device, torch::kLong);
    auto logits = model.forward(x);  // (rows, len, V)
    auto loss = torch::nn::functional::cross_entropy(
                    logits.reshape({-1, logits.size(-1)}).to(torch::kFloat32), x.reshape({-1}) + model.vocab_offset(),
                    torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone))
                    .view({rows, len})
                    .to(torch::kCPU, torch::kFloat64)
                    .contiguous();
    const double* l = loss.data_ptr<double>();
    for (int64_t r = 0; r < rows; ++r) {
      const auto& win = windows[w + size_t(r)];
      for (int64_t t = win.first; t < win.start + len; ++t) {
        nll[size_t(t)] = l[r * len + (t - win.start)];
        pos[size_t(t)] = (t - win.start) % P;
      }
    }
    w = e;
  }
}

}  // namespace

double score_bytes_strided(LanguageModelImpl& model, const uint8_t* data, int64_t n, int64_t stride, int64_t batch,
                           const std::string& device, bool bf16, bool keep_late) {
  const auto& cfg = model.config();
  if (model.fixed_patch_size() < 2)
    throw Error("--strided is MEGABYTE's strided inference: it needs a megabyte model with patch_size >= 2");
  const int64_t T = cfg.context;
  if (stride < 0 || stride > T) throw Error("--stride must be in [1, " + std::to_string(T) + "] (the context)");
  torch::NoGradGuard no_grad;
  AutocastScope autocast(torch::Device(device), bf16);
  const int64_t offset = cfg.patch_size / 2;
  std::vector<double> nll_a, nll_b;
  std::vector<int64_t> pos_a, pos_b;
  per_byte_scores(model, data, n, stride, batch, device, nll_a, pos_a);
  if (n > offset) per_byte_scores(model, data + offset, n - offset, stride, batch, device, nll_b, pos_b);
  double total = 0;
  for (int64_t t = 0; t < n; ++t) {
    const int64_t a = pos_a[size_t(t)], b = t >= offset ? pos_b[size_t(t - offset)] : a;
    const bool second = keep_late ? b > a : b < a;
    total += second ? nll_b[size_t(t - offset)] : nll_a[size_t(t)];
  }
  return total;
}

}  // namespace bytelm
