// model_host.cpp — opening the served checkpoint and scoring texts (see model_host.h).
#include "serve/model_host.h"

#include <torch/torch.h>

#include <cmath>

#include "blt/entropy_threshold.h"
#include "model/checkpoint.h"
#include "model/entropy_model.h"
#include "serve/api.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace bytelm::serve {

ServedModel open_model(const std::string& ckpt, const std::string& device, int threads) {
  ServedModel m;
  m.model = load_for_inference(ckpt, device, threads);
  const ModelConfig& cfg = m.model->config();
  m.kind = cfg.model;
  m.context = cfg.context;
  m.params = m.model->num_params();
  if (m.model->reads_tokens())
    m.tokenizer = std::make_shared<Tokenizer>(load_checkpoint_tokenizer(ckpt, cfg.vocab_size));
  return m;
}

std::shared_ptr<LanguageModelImpl> open_draft(const ServedModel& target, const std::string& draft,
                                              const SpeculativeOptions& spec, const std::string& device, int threads) {
  std::shared_ptr<LanguageModelImpl> d =
      draft == "self" ? target.model->entropy_patcher() : load_for_inference(draft, device, threads);
  if (!d) throw Error("--draft self: a " + target.kind + " model has no entropy model of its own");
  check_speculative(*target.model, *d, spec);
  return d;
}

nlohmann::json score(const ServedModel& m, const std::string& bytes, const std::string& device) {
  if (m.tokenizer) {
    ApiError e;
    e.status = 501;
    e.type = "not_supported_error";
    e.message = "per-byte scoring needs a byte model; this server runs the BPE baseline";
    throw e;
  }
  c10::InferenceMode inference;
  const int64_t N = int64_t(bytes.size()), offset = m.model->vocab_offset();
  auto input =
      torch::from_blob(const_cast<char*>(bytes.data()), {1, N}, torch::kUInt8).to(torch::Device(device), torch::kLong);
  auto logits = m.model->forward(input).select(0, 0).to(torch::kCPU, torch::kFloat32);  // (N, V)
  auto logp = torch::log_softmax(logits, 1);                                            // (N, V)
  auto target = input.select(0, 0).to(torch::kCPU) + offset;                            // (N)
  auto nats = -logp.gather(1, target.view({N, 1})).view({N});
  std::vector<float> bits(static_cast<size_t>(N), 0.0f);
  double total = 0;
  for (int64_t i = 0; i < N; ++i) {
    bits[size_t(i)] = float(nats[i].item<double>() / std::log(2.0));
    total += bits[size_t(i)];
  }
  std::vector<int> values(bytes.begin(), bytes.end());
  for (auto& v : values) v &= 0xff;
  nlohmann::json j{{"object", "score"}, {"model", m.kind},     {"bytes", values},
                   {"bits", bits},      {"total_bits", total}, {"bits_per_byte", total / double(N)}};
  const auto learned = m.model->chunk_starts(input);  // H-Net: the chunks it learned, the outer stage's
  if (!learned.empty()) {
    j["patching"] = "learned";
    j["patch_starts"] = learned.front();
  } else if (m.model->dynamic_patches()) {  // BLT: the entropies and patches the page draws
    const PatchingConfig& p = m.model->config().patching;
    j["patching"] = p.mode;
    try {
      auto patcher = m.model->entropy_patcher();
      auto ent = byte_entropies(*patcher, bytes, device);
      j["entropies"] = ent;
      if (p.mode == "entropy") {
        j["threshold"] = p.threshold;
        j["patch_starts"] = patch_starts(ent, p.threshold, p.max_patch_length);
      }
    } catch (const Error&) {
      // A BLT without an entropy model (static, space or byte patching): no entropies to show.
    }
  }
  return j;
}

}  // namespace bytelm::serve
