// token_evaluate.cpp — bits per byte of the BPE baseline (see token_evaluate.h).
#include "eval/token_evaluate.h"

#include <torch/torch.h>

#include <cmath>

#include "data/token_corpus.h"
#include "eval/window_loss.h"
#include "model/model.h"
#include "util/device.h"

namespace bytelm {

double score_tokens(LanguageModelImpl& model, const int32_t* ids, int64_t n, int64_t batch, const std::string& device,
                    bool bf16, int64_t stride) {
  if (stride > 0) return score_sliding_array(model, ids, n, stride, batch, device, bf16);
  return score_id_array(model, ids, n, batch, device, bf16);
}

std::vector<FileScore> score_token_files(LanguageModelImpl& model, const TokenCorpus& corpus, Split split,
                                         int64_t batch, const std::string& device, bool bf16,
                                         const std::function<void(int64_t, int64_t)>& progress, int64_t stride) {
  std::vector<FileScore> out;
  const auto& ids = corpus.ids(split);
  int64_t done = 0;
  for (const auto& f : corpus.files(split)) {
    if (f.bytes == 0) continue;
    const int64_t n = f.end - f.begin;
    out.push_back({f.path, f.bytes, score_tokens(model, ids.data() + f.begin, n, batch, device, bf16, stride), n});
    done += f.bytes;
    if (progress) progress(done, corpus.bytes(split));
  }
  return out;
}

double token_validation_bpb(LanguageModelImpl& model, const TokenCorpus& corpus, int64_t batch, int64_t eval_batches,
                            const std::string& device, bool bf16, int64_t first_row,
                            const std::function<void(double*, double*)>& sum_over_ranks) {
  const int64_t len = std::min<int64_t>(model.config().context, corpus.tokens(Split::Val));
  if (len < 1) return NAN;
  torch::NoGradGuard no_grad;
  AutocastScope autocast(torch::Device(device), bf16);
  std::vector<int64_t> buf(size_t(batch * len));
  double nats = 0;
  int64_t bytes = 0;
  for (int64_t i = 0; i < eval_batches; ++i) {
    corpus.sample(Split::Val, 0x5eed, uint64_t(i), batch, len, buf.data(), first_row);
    auto x = torch::from_blob(buf.data(), {batch, len}, torch::kLong).to(torch::Device(device));
    nats += window_nats(model, x);
    for (int64_t r = 0; r < batch; ++r) {
      std::vector<int32_t> row(buf.begin() + r * len, buf.begin() + (r + 1) * len);
      bytes += int64_t(corpus.decoded_bytes_of(row));
    }
  }
  double total_bytes = double(bytes);
  if (sum_over_ranks) sum_over_ranks(&nats, &total_bytes);
  return nats / total_bytes / std::log(2.0);
}

}  // namespace bytelm
