// generate_tokens.cpp — sampling subword tokens with KV caches, streamed as bytes (see generate_tokens.h).
#include "generate/generate_tokens.h"

#include <torch/torch.h>

#include <limits>
#include <random>

#include "model/decode_weights.h"
#include "model/model.h"
#include "tokenizer/byte_escape.h"
#include "tokenizer/tokenizer.h"
#include "util/device.h"
#include "util/error.h"

namespace bytelm {

namespace {

bool ends_with_any(const std::string& out, const std::vector<std::string>& stops) {
  for (const auto& s : stops)
    if (!s.empty() && out.size() >= s.size() && out.compare(out.size() - s.size(), s.size(), s) == 0) return true;
  return false;
}

}  // namespace

std::string generate_tokens(LanguageModelImpl& model, const Tokenizer& tokenizer, const GenerateOptions& opt,
                            const std::function<void(uint8_t)>& sink) {
  if (opt.repetition_penalty != 1.0)
    throw Error("--repetition-penalty works on byte models only (the BPE baseline samples tokens)");
  c10::InferenceMode inference;
  const torch::Device device(opt.device);
  AutocastScope autocast(device, use_bf16(opt.precision, opt.device));
  Bf16Decoding bf16_weights(opt.decode_weights == "bf16");
  const int64_t T = model.config().context;
  std::vector<int32_t> ids = tokenizer.encode(opt.prompt);
  if (int64_t(ids.size()) >= T)
    throw Error("prompt of " + std::to_string(ids.size()) + " tokens does not fit the context of " + std::to_string(T) +
                " tokens (at most " + std::to_string(T - 1) + ")");
  auto ids_tensor = [&](const int32_t* p, int64_t n) {
    return torch::from_blob(const_cast<int32_t*>(p), {1, n}, torch::kInt32).to(device, torch::kLong);
  };
  // Logits (V) for the token after ids; no_cache: the full forward pass over ids + a placeholder token.
  auto prefill = [&]() {
    if (opt.no_cache) {
      std::vector<int32_t> x = ids;
      x.push_back(0);
      return model.forward(ids_tensor(x.data(), int64_t(x.size()))).select(1, int64_t(ids.size())).view({-1});
    }
    auto logits = model.start(1);  // (1, V)
    if (!ids.empty())
      logits = model.feed(ids_tensor(ids.data(), int64_t(ids.size()))).select(1, int64_t(ids.size()) - 1);
    return logits.view({-1});
  };
  auto logits = prefill();
  std::mt19937_64 rng(opt.seed);
  StreamUnescaper unescaper;
  std::string out;
  auto emit = [&](const std::string& bytes) {  // true when done (max bytes or a stop string)
    for (char c : bytes) {
      out.push_back(c);
      sink(uint8_t(c));
      if (int64_t(out.size()) >= opt.max_bytes || ends_with_any(out, opt.stop)) return true;
    }
    return false;
  };
  bool done = opt.max_bytes <= 0;
  while (!done) {
    auto l = logits.to(torch::kCPU, torch::kFloat32).contiguous().clone();
    l.narrow(0, 0, kTokenControlIds).fill_(-std::numeric_limits<float>::infinity());
    const int id = sample_byte(l.data_ptr<float>(), int(l.numel()), opt, rng, std::string());
    done = emit(unescaper.push(tokenizer.token_text(id)));
    if (done) break;
    ids.push_back(id);
    if (int64_t(ids.size()) > T - 1) {
      // The context is full: keep its last half and re-prefill (the model sees at most T tokens).
      ids.erase(ids.begin(), ids.end() - window_kept(T));
      logits = prefill();
    } else if (opt.no_cache) {
      logits = prefill();
    } else {
      logits = model.feed(ids_tensor(&ids.back(), 1)).view({-1});
    }
  }
  if (int64_t(out.size()) < opt.max_bytes && !ends_with_any(out, opt.stop)) emit(unescaper.flush());
  return out;
}

std::vector<std::string> generate_tokens_batch(LanguageModelImpl& model, const Tokenizer& tokenizer,
                                               const std::vector<std::string>& prompts, const GenerateOptions& opt) {
  if (prompts.size() > 1 && !opt.no_cache) {
    if (opt.repetition_penalty != 1.0)
      throw Error("--repetition-penalty works on byte models only (the BPE baseline samples tokens)");
    return decode_batch(model, prompts, opt, &tokenizer);
  }
  std::vector<std::string> outs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    GenerateOptions o = opt;
    o.prompt = prompts[i];
    o.seed = opt.seed + uint64_t(i);
    outs.push_back(generate_tokens(model, tokenizer, o, [](uint8_t) {}));
  }
  return outs;
}

}  // namespace bytelm
