// token_evaluate.h — bits per byte of the BPE baseline, so it compares with byte models like for like:
// the token negative log-likelihoods summed over a file, divided by the file's raw byte count (and ln 2).
// Windows are in tokens: consecutive windows of the context T, each scored from the model's start state, so
// a window's first token is predicted from the start id alone (as a byte model's first byte is), or sliding
// windows (a stride in tokens) like the byte models'; every token is scored exactly once, and only the canonical
// segmentation is scored (the papers' convention).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "eval/evaluate.h"

namespace bytelm {

class TokenCorpus;

// Total cross-entropy in nats of ids[0, n): consecutive windows of the context, `batch` per forward pass;
// with stride > 0 (tokens, in [1, T]) sliding windows as score_bytes_sliding, the byte models' protocol.
double score_tokens(LanguageModelImpl& model, const int32_t* ids, int64_t n, int64_t batch, const std::string& device,
                    bool bf16 = false, int64_t stride = 0);

// Every file's part of the split (FileScore: raw bytes, tokens, nats); stride as score_tokens.
std::vector<FileScore> score_token_files(LanguageModelImpl& model, const TokenCorpus& corpus, Split split,
                                         int64_t batch, const std::string& device, bool bf16,
                                         const std::function<void(int64_t, int64_t)>& progress = {},
                                         int64_t stride = 0);

// Training's validation: `eval_batches` x `batch` fixed windows of the validation token stream (seed-
// independent), nats over the bytes those tokens decode to. NaN if the split is empty. Eval mode.
// Data-parallel: rows [first_row, first_row + batch) of each draw, and `sum_over_ranks` (if given) turns
// this rank's (nats, bytes) into the totals over ranks before the ratio.
double token_validation_bpb(LanguageModelImpl& model, const TokenCorpus& corpus, int64_t batch, int64_t eval_batches,
                            const std::string& device, bool bf16, int64_t first_row = 0,
                            const std::function<void(double*, double*)>& sum_over_ranks = {});

}  // namespace bytelm
