// generate.cpp — sampling with KV caches: batch 1 streamed byte by byte, or several prompts at once
// (see generate.h).
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>

#include "generate/batch_decoder.h"
#include "generate/generate.h"
#include "generate/static_decoder.h"
#include "model/checkpoint.h"
#include "model/decode_weights.h"
#include "util/device.h"
#include "util/error.h"
#include "util/platform.h"

namespace bytelm {

namespace {

// One byte from the 256 byte logits (any device) under the sampling options.
int sample_byte(const torch::Tensor& logits, const GenerateOptions& o, std::mt19937_64& rng,
                const std::string& recent) {
  auto l = logits.to(torch::kCPU, torch::kFloat32).contiguous();
  return sample_byte(l.data_ptr<float>(), int(l.numel()), o, rng, recent);
}

// True once `out` ends with one of the stop strings.
bool ends_with_stop(const std::string& out, const std::vector<std::string>& stops) {
  for (const auto& s : stops)
    if (!s.empty() && out.size() >= s.size() && out.compare(out.size() - s.size(), s.size(), s) == 0) return true;
  return false;
}

void check_prompt_fits(size_t bytes, int64_t context) {
  if (int64_t(bytes) >= context)
    throw Error("prompt of " + std::to_string(bytes) + " bytes does not fit the context of " + std::to_string(context) +
                " bytes (at most " + std::to_string(context - 1) + ")");
}

// Static steps (replayed as CUDA graphs on CUDA) for `batch` rows when --decode asks for them; null = the
// growing caches of feed().
std::unique_ptr<StaticDecoder> static_steps(LanguageModelImpl& model, const GenerateOptions& opt, int64_t batch) {
  if (opt.no_cache) return nullptr;
  const StepPlan plan = plan_steps(opt.decode, model, torch::Device(opt.device), batch);
  return plan.static_steps ? std::make_unique<StaticDecoder>(model, plan.graphs) : nullptr;
}

}  // namespace

std::string generate(LanguageModelImpl& model, const GenerateOptions& opt, const std::function<void(uint8_t)>& sink) {
  // Inference mode, not just no-grad: no version counters or autograd views are tracked in the many
  // small per-byte steps.
  c10::InferenceMode inference;
  const torch::Device device(opt.device);
  AutocastScope autocast(device, use_bf16(opt.precision, opt.device));
  Bf16Decoding bf16_weights(opt.decode_weights == "bf16");
  const int64_t T = model.config().context;
  check_prompt_fits(opt.prompt.size(), T);
  auto bytes_tensor = [&](const std::string& s) {  // one copy, not one tensor op per byte
    auto t = torch::from_blob(const_cast<char*>(s.data()), {1, int64_t(s.size())}, torch::kUInt8);
    return t.to(device, torch::kLong);
  };
  std::string text = opt.prompt;  // everything in the context window so far
  const int64_t offset = model.vocab_offset();
  auto steps = static_steps(model, opt, 1);
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
    int b = sample_byte(logits.narrow(0, offset, 256), opt, rng, text);
    out.push_back(char(b));
    sink(uint8_t(b));
    if (ends_with_stop(out, opt.stop)) break;
    if (i + 1 == opt.max_bytes) break;
    text.push_back(char(b));
    if (int64_t(text.size()) > T - 1) {
      // The context is full: keep its last half and re-prefill (the model sees at most T bytes).
      text = text.substr(text.size() - size_t(window_kept(T)));
      logits = prefill(text);
    } else if (opt.no_cache) {
      logits = next_logits_uncached();
    } else {
      auto next = bytes_tensor(std::string(1, char(b)));  // (1, 1)
      logits = steps ? steps->step(next.view({1})).view({-1}) : model.feed(next).view({-1});
    }
  }
  return out;
}

std::vector<std::string> generate_batch(LanguageModelImpl& model, const std::vector<std::string>& prompts,
                                        const GenerateOptions& opt, BatchDecoderStats* stats) {
  const int64_t B = int64_t(prompts.size());
  std::vector<std::string> outs(prompts.size());
  if (B == 0 || opt.max_bytes == 0) return outs;
  if ((B == 1 && !opt.draft) || opt.no_cache) {
    for (int64_t i = 0; i < B; ++i) {
      GenerateOptions o = opt;
      o.prompt = prompts[i];
      o.seed = opt.seed + uint64_t(i);
      outs[i] = generate(model, o, [](uint8_t) {});
    }
    return outs;
  }
  for (const auto& p : prompts) check_prompt_fits(p.size(), model.config().context);
  return decode_batch(model, prompts, opt, nullptr, stats);
}

std::vector<std::string> decode_batch(LanguageModelImpl& model, const std::vector<std::string>& prompts,
                                      const GenerateOptions& opt, const Tokenizer* tokenizer, BatchDecoderStats* stats,
                                      const std::function<void(int64_t, uint8_t)>& on_byte) {
  const int64_t B = int64_t(prompts.size());
  std::vector<std::string> outs(prompts.size());
  if (B == 0 || opt.max_bytes == 0) return outs;
  c10::InferenceMode inference;
  const torch::Device device(opt.device);
  AutocastScope autocast(device, use_bf16(opt.precision, opt.device));
  Bf16Decoding bf16_weights(opt.decode_weights == "bf16");
  const int64_t T = model.config().context;
  BatchDecoderOptions bo;
  bo.tokenizer = tokenizer;
  bo.slots = B;
  bo.prefill_chunk = T;  // every prompt is there from the start: each prefills in one step
  bo.device = opt.device;
  bo.decode = opt.decode;
  // Static steps (CUDA graphs by default on CUDA) need rows at one shared position; speculative rounds rows.
  bo.row_positions = opt.draft || (opt.row_positions && !plan_steps(opt.decode, model, device, B).static_steps);
  bo.draft = opt.draft;
  bo.draft_max = opt.draft_max;
  bo.draft_p_min = opt.draft_p_min;
  BatchDecoder decoder(model, bo);
  std::vector<int64_t> row_of(static_cast<size_t>(B));  // decoder id -> prompt index (ids are 0..B-1 in order)
  for (int64_t i = 0; i < B; ++i)
    row_of[size_t(decoder.add(prompts[i], opt, opt.seed + uint64_t(i), opt.max_bytes))] = i;
  std::vector<bool> ended(static_cast<size_t>(B), false);  // a step may give a row several pieces
  while (decoder.live() > 0)
    for (const auto& s : decoder.step()) {
      const int64_t i = row_of[size_t(s.id)];
      std::string& out = outs[size_t(i)];
      for (char c : s.bytes) {
        if (ended[size_t(i)]) break;
        out.push_back(c);
        if (on_byte) on_byte(i, uint8_t(c));
        if (ends_with_stop(out, opt.stop) || int64_t(out.size()) == opt.max_bytes) {
          decoder.remove(s.id);
          ended[size_t(i)] = true;
        }
      }
    }
  if (stats) *stats = decoder.stats();
  return outs;
}

void check_generate_options(const GenerateOptions& opt) {
  if (opt.max_bytes < 1) throw Error("--max-bytes must be >= 1");
  check_sampling(opt);
  if (opt.threads < 0) throw Error("--threads must be >= 0 (0 = all cores)");
  check_decode_weights(opt.decode_weights, opt.device, opt.precision);
}

}  // namespace bytelm
