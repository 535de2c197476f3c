// model_host.h — the model side of `bytelm serve` that needs LibTorch, behind a torch-free header: opening
// the checkpoint (and the BPE baseline's tokenizer), and scoring a text (POST /v1/score).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "generate/speculative.h"

#include <nlohmann/json.hpp>

namespace bytelm {
class LanguageModelImpl;
class Tokenizer;
}  // namespace bytelm

namespace bytelm::serve {

struct ServedModel {
  std::shared_ptr<LanguageModelImpl> model;
  std::shared_ptr<Tokenizer> tokenizer;  // the BPE baseline only
  std::string kind;                      // transformer | megabyte | blt | bpe | entropy
  int64_t context = 0;                   // bytes (bpe: tokens; requests are held to as many bytes, which is safe)
  int64_t params = 0;
};
// Throws Error (bad checkpoint, bad device).
ServedModel open_model(const std::string& ckpt, const std::string& device, int threads);

// serve --draft: the draft model for speculative decoding (a byte-model checkpoint, or "self": a BLT's own
// entropy model), checked against the target (speculative.h); Error naming the problem otherwise.
std::shared_ptr<LanguageModelImpl> open_draft(const ServedModel& target, const std::string& draft,
                                              const SpeculativeOptions& spec, const std::string& device, int threads);

// Per-byte surprisal of `bytes` (1 .. context) under the model, each byte predicted from the bytes before it:
// {"bytes":[..], "bits":[..], "total_bits", "bits_per_byte"}; for BLT also "entropies" (nats, the patcher's
// entropy of the prediction of each byte), "threshold", and "patch_starts" (byte offsets where patches begin,
// by the model's entropy rule). Throws ApiError for a model that cannot score bytes (bpe).
nlohmann::json score(const ServedModel& m, const std::string& bytes, const std::string& device);

}  // namespace bytelm::serve
