// generate.cpp — batch-1 sampling with KV caches, streamed byte by byte (see evaluate.h).
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>

#include "model/checkpoint.h"
#include "train/evaluate.h"
#include "util/error.h"
#include "util/platform.h"

namespace bytelm {

namespace {

// Samples one byte from logits (256) with temperature, top-k and top-p (nucleus) filtering.
int sample_byte(const torch::Tensor& logits, const GenerateOptions& o, std::mt19937_64& rng) {
  auto l = logits.to(torch::kCPU, torch::kFloat32).contiguous();
  const float* p = l.data_ptr<float>();
  const int V = int(l.numel());
  if (o.temperature <= 0) return int(std::max_element(p, p + V) - p);
  std::vector<int> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
  int keep = o.top_k > 0 ? std::min<int>(V, int(o.top_k)) : V;
  std::vector<double> probs(keep);
  double maxv = p[order[0]], sum = 0;
  for (int i = 0; i < keep; ++i) sum += probs[i] = std::exp((p[order[i]] - maxv) / o.temperature);
  if (o.top_p < 1.0) {
    double acc = 0;
    int cut = keep;
    for (int i = 0; i < keep; ++i) {
      acc += probs[i] / sum;
      if (acc >= o.top_p) { cut = i + 1; break; }
    }
    keep = cut;
    probs.resize(keep);
  }
  std::discrete_distribution<int> dist(probs.begin(), probs.end());
  return order[dist(rng)];
}

}  // namespace

std::string generate(LanguageModelImpl& model, const GenerateOptions& opt, const std::function<void(uint8_t)>& sink) {
  // Inference mode, not just no-grad: no version counters or autograd views are tracked in the many
  // small per-byte steps.
  c10::InferenceMode inference;
  const int64_t T = model.config().context;
  if (int64_t(opt.prompt.size()) >= T)
    throw Error("prompt of " + std::to_string(opt.prompt.size()) + " bytes does not fit the context of " +
                std::to_string(T) + " bytes (at most " + std::to_string(T - 1) + ")");
  const torch::Device device(opt.device);
  auto bytes_tensor = [&](const std::string& s) {  // one copy, not one tensor op per byte
    auto t = torch::from_blob(const_cast<char*>(s.data()), {1, int64_t(s.size())}, torch::kUInt8);
    return t.to(device, torch::kLong);
  };
  std::string text = opt.prompt;  // everything in the context window so far
  const int64_t offset = model.vocab_offset();
  // Logits over the 256 byte values for the byte after `text`; special ids (BLT) are never sampled.
  auto next_logits_uncached = [&]() {
    // The full forward pass over text + one placeholder byte: by causality the last row predicts the
    // byte after `text` and does not depend on the placeholder.
    auto logits = model.forward(bytes_tensor(text + std::string(1, '\0')));  // (1, n+1, V)
    return logits.select(1, int64_t(text.size())).view({-1});
  };
  auto prefill = [&](const std::string& ctx) {
    if (opt.no_cache) return next_logits_uncached();
    auto logits = model.start(1);  // (1, V)
    if (!ctx.empty()) logits = model.feed(bytes_tensor(ctx)).select(1, ctx.size() - 1);
    return logits.view({-1});
  };
  auto logits = prefill(text);
  std::mt19937_64 rng(opt.seed);
  std::string out;
  for (int64_t i = 0; i < opt.max_bytes; ++i) {
    int b = sample_byte(logits.narrow(0, offset, 256), opt, rng);
    out.push_back(char(b));
    sink(uint8_t(b));
    if (!opt.stop.empty() && out.size() >= opt.stop.size() &&
        out.compare(out.size() - opt.stop.size(), opt.stop.size(), opt.stop) == 0)
      break;
    if (i + 1 == opt.max_bytes) break;
    text.push_back(char(b));
    if (int64_t(text.size()) > T - 1) {
      // The context is full: keep its last half and re-prefill (the model sees at most T bytes).
      const int64_t keep = std::max<int64_t>(1, T / 2);
      text = text.substr(text.size() - keep);
      logits = prefill(text);
    } else if (opt.no_cache) {
      logits = next_logits_uncached();
    } else {
      logits = model.feed(bytes_tensor(std::string(1, char(b)))).view({-1});
    }
  }
  return out;
}

int run_generate(const GenerateOptions& opt) {
  if (opt.max_bytes < 0) throw Error("--max-bytes must be >= 0");
  if (opt.temperature < 0) throw Error("--temperature must be >= 0");
  if (opt.top_k < 0) throw Error("--top-k must be >= 0");
  if (!(opt.top_p > 0 && opt.top_p <= 1)) throw Error("--top-p must be in (0, 1]");
  auto model = load_for_inference(opt.ckpt, opt.device, opt.threads);
  generate(*model, opt, [](uint8_t b) {
    std::fputc(b, stdout);
    std::fflush(stdout);
  });
  return 0;
}

}  // namespace bytelm
