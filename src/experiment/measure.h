// measure.h — what the experiment runner measures on a trained model: bits per byte of held-out bytes (byte
// models with sliding windows, the BPE baseline over its tokens), FLOPs per byte part by part, BLT patch
// statistics and threshold sweeps, generation speed. Letters: T context, B windows.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bytelm {
class LanguageModelImpl;
class Corpus;
class Tokenizer;
class BltImpl;
}  // namespace bytelm

namespace bytelm::experiment {

// The held-out bytes of a dataset: from every file's validation part its head, in proportion to the part's
// size so that every file contributes, concatenated in file order, max_bytes in all (0 = every byte). The
// models and the compressors are scored on exactly these bytes.
std::string held_out_bytes(const Corpus& corpus, int64_t max_bytes);

// Cross-entropy in nats of every byte of `bytes`: sliding windows moved by `stride` ids (stride = T:
// consecutive windows), bytes for byte models; the BPE baseline (tokenizer given) encodes the bytes (cut at
// whitespace into pieces of <= 4 KB, which gives the same tokens faster) and slides over tokens, so every
// model is scored with the same protocol; *tokens gets the token count.
double score_text(LanguageModelImpl& model, const Tokenizer* tokenizer, const std::string& bytes, int64_t stride,
                  int64_t batch, int64_t* tokens = nullptr);

// The device the model's weights are on ("cpu", "cuda:0", ...): where its inputs go.
std::string device_of(const LanguageModelImpl& model);

// The encoding used by score_text (exposed for the CUTE-like tasks).
std::vector<int32_t> encode_chunked(const Tokenizer& tokenizer, const std::string& bytes);

// Parts and totals of the model's FLOPs per byte (one forward pass): "forward_per_byte" (counted parts),
// "entropy_model_per_byte" (BLT's patcher, counted apart), "with_entropy_model_per_byte", "parts".
nlohmann::json flops_json(const LanguageModelImpl& model);

// BLT: patch statistics over `bytes` (windows of the context): mean, standard deviation and a histogram of
// patch lengths, the patching mode and threshold. Sets the model's mean patch size (its FLOPs) to the mean.
nlohmann::json blt_patch_stats(BltImpl& blt, const std::string& bytes);

// Learned patches (H-Net): over up to 16 windows of `bytes`, the bytes per chunk realised (mean over windows,
// and each stage's positions per chunk) and where chunks start (whitespace, word starts, against their share
// of all bytes). Sets the model's FLOPs to the realised chunk sizes.
nlohmann::json learned_patch_stats(LanguageModelImpl& model, const std::string& bytes);

// Bytes per second of batch-1 sampling (temperature 1, KV caches, 1 thread) of `n` bytes after `prompt`.
double generation_bytes_per_s(LanguageModelImpl& model, const Tokenizer* tokenizer, const std::string& prompt,
                              int64_t n, uint64_t seed);

}  // namespace bytelm::experiment
