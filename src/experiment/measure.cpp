// measure.cpp — held-out scoring, FLOPs parts, BLT patch statistics and generation speed (see measure.h).
#include "experiment/measure.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "blt/hash.h"
#include "data/corpus.h"
#include "eval/evaluate.h"
#include "eval/token_evaluate.h"
#include "generate/generate.h"
#include "generate/generate_tokens.h"
#include "model/blt.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/text.h"

namespace bytelm::experiment {

using json = nlohmann::json;

std::string held_out_bytes(const Corpus& corpus, int64_t max_bytes) {
  const auto files = corpus.files(Split::Val);
  const int64_t total = corpus.size(Split::Val);
  if (total == 0) throw Error("the dataset has no held-out bytes (validation split is empty)");
  const double share = max_bytes > 0 && max_bytes < total ? double(max_bytes) / double(total) : 1.0;
  std::string out;
  for (const auto& f : files) {
    const int64_t take = std::min<int64_t>(f.size, int64_t(std::ceil(share * double(f.size))));
    out.append(reinterpret_cast<const char*>(f.data), size_t(take));
  }
  if (max_bytes > 0 && int64_t(out.size()) > max_bytes) out.resize(size_t(max_bytes));
  return out;
}

std::vector<int32_t> encode_chunked(const Tokenizer& tokenizer, const std::string& bytes) {
  // Pieces never cross whitespace, so cutting after a space or newline gives the same tokens.
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t end = std::min(bytes.size(), pos + 4096);
    if (end < bytes.size()) {
      size_t cut = bytes.find_last_of(" \n", end - 1);
      if (cut != std::string::npos && cut > pos) end = cut;  // the whitespace starts the next chunk
    }
    auto part = tokenizer.encode(reinterpret_cast<const uint8_t*>(bytes.data() + pos), int64_t(end - pos));
    ids.insert(ids.end(), part.begin(), part.end());
    pos = end;
  }
  return ids;
}

std::string device_of(const LanguageModelImpl& model) {
  return const_cast<LanguageModelImpl&>(model).parameters().front().device().str();
}

double score_text(LanguageModelImpl& model, const Tokenizer* tokenizer, const std::string& bytes, int64_t stride,
                  int64_t batch, int64_t* tokens) {
  torch::NoGradGuard no_grad;
  model.eval();
  const std::string device = device_of(model);
  const int64_t slide = stride > 0 && stride < model.config().context ? stride : 0;  // 0: consecutive windows
  if (tokenizer) {
    const auto ids = encode_chunked(*tokenizer, bytes);
    if (tokens) *tokens = int64_t(ids.size());
    return score_tokens(model, ids.data(), int64_t(ids.size()), batch, device, false, slide);
  }
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  const int64_t n = int64_t(bytes.size());
  return slide > 0 ? score_bytes_sliding(model, data, n, slide, batch, device)
                   : score_bytes(model, data, n, batch, device);
}

json flops_json(const LanguageModelImpl& model) {
  json parts = json::array();
  double counted = 0, entropy = 0;
  // A BLT patching by spaces (or fixed sizes) holds patcher weights but never runs them.
  const bool patcher_runs = !model.dynamic_patches() || model.runs_entropy_model();
  for (const auto& p : model.flops()) {
    const double f = p.matmul_flops + p.attention_flops;
    if (p.counted)
      counted += f;
    else if (patcher_runs)
      entropy += f;
    parts.push_back({{"name", p.name},
                     {"params", p.params},
                     {"matmul_params", p.matmul_params},
                     {"matmul_flops", p.matmul_flops},
                     {"attention_flops", p.attention_flops},
                     {"counted", p.counted},
                     {"runs", p.counted || patcher_runs}});
  }
  return json{{"forward_per_byte", counted},
              {"entropy_model_per_byte", entropy},
              {"with_entropy_model_per_byte", counted + entropy},
              {"parts", parts},
              {"params", model.num_params()},
              {"counted_params", model.counted_params()}};
}

json blt_patch_stats(BltImpl& blt, const std::string& bytes) {
  torch::NoGradGuard no_grad;
  const int64_t T = blt.config().context, rows = std::max<int64_t>(1, int64_t(bytes.size()) / T);
  if (int64_t(bytes.size()) < T) throw Error("too few held-out bytes for one window of the BLT's context");
  auto buf =
      torch::from_blob(const_cast<char*>(bytes.data()), {rows, T}, torch::kUInt8).to(device_of(blt), torch::kLong);
  auto ids = torch::cat({torch::full({rows, 1}, blt::kBos, buf.options()), buf + blt::kByteOffset}, 1);
  std::vector<int64_t> hist(17, 0);  // lengths 1..16, the last bin holds >= 16
  double sum = 0, sum2 = 0, count = 0, mean_sum = 0;
  for (const auto& lengths : blt.batch_patch_lengths(ids)) {
    mean_sum += blt::mean_bytes_per_patch(lengths);
    for (size_t j = 1; j < lengths.size(); ++j) {  // patch 0 is the BOS alone
      const int64_t l = lengths[j];
      sum += double(l);
      sum2 += double(l) * double(l);
      count += 1;
      hist[size_t(std::clamp<int64_t>(l, 0, 16))] += 1;
    }
  }
  const double mean = mean_sum / double(rows), m = sum / std::max(1.0, count);
  blt.set_mean_patch_size(mean);
  return json{{"mode", blt.config().patching.mode},
              {"threshold", blt.config().patching.threshold},
              {"mean_bytes_per_patch", mean},
              {"std_bytes_per_patch", std::sqrt(std::max(0.0, sum2 / std::max(1.0, count) - m * m))},
              {"histogram_1_to_16", hist},
              {"windows", rows}};
}

json learned_patch_stats(LanguageModelImpl& model, const std::string& bytes) {
  torch::NoGradGuard no_grad;
  const int64_t T = model.config().context, rows = std::min<int64_t>(16, int64_t(bytes.size()) / T);
  if (rows < 1) throw Error("too few held-out bytes for one window of the model's context");
  const torch::Device device(device_of(model));
  std::vector<int64_t> starts;  // outer-stage chunk starts as offsets into the first rows * T bytes
  for (int64_t r = 0; r < rows; ++r) {
    auto x = torch::from_blob(const_cast<char*>(bytes.data()) + r * T, {1, T}, torch::kUInt8).to(device, torch::kLong);
    const auto stages = model.chunk_starts(x);
    for (int64_t b : stages.at(0)) starts.push_back(r * T + b);
  }
  auto all = torch::from_blob(const_cast<char*>(bytes.data()), {rows, T}, torch::kUInt8).to(device, torch::kLong);
  const double mean = model.count_patches_of(all);  // also the FLOPs' patch size from now on
  const BoundaryProfile p = boundary_profile(bytes.substr(0, size_t(rows * T)), starts);
  return json{{"mode", "learned"},
              {"mean_bytes_per_patch", mean},
              {"describe", model.describe_patches()},
              {"starts_at_whitespace", p.starts_at_whitespace},
              {"starts_at_word_start", p.starts_at_word_start},
              {"bytes_whitespace", p.bytes_whitespace},
              {"bytes_word_start", p.bytes_word_start},
              {"windows", rows}};
}

double generation_bytes_per_s(LanguageModelImpl& model, const Tokenizer* tokenizer, const std::string& prompt,
                              int64_t n, uint64_t seed) {
  GenerateOptions opt;
  opt.prompt = prompt;
  opt.max_bytes = n;
  opt.seed = seed;
  opt.decode = "dynamic";
  opt.device = device_of(model);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string out =
      tokenizer ? generate_tokens(model, *tokenizer, opt, [](uint8_t) {}) : generate(model, opt, [](uint8_t) {});
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return s > 0 ? double(out.size()) / s : 0;
}

}  // namespace bytelm::experiment
