// evaluate.h — bits per byte: every byte of whole files (consecutive windows of the context), and the fixed
// validation windows training scores. Shapes: B windows, T bytes (the context).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace bytelm {

class LanguageModelImpl;
class Corpus;
enum class Split;

// Total cross-entropy in nats of every byte of data[0, n): consecutive windows of the model's context,
// each scored from the model's start state, `batch` windows per forward pass.
double score_bytes(LanguageModelImpl& model, const uint8_t* data, int64_t n, int64_t batch, const std::string& device,
                   bool bf16 = false);

// The same with overlapping windows (sliding-window evaluation): windows of the context T, each after the
// first moved by `stride` bytes and scoring only its last `stride` bytes, so every byte is scored once and,
// past the first window, with at least T - stride bytes of context. stride in [1, T]; Error otherwise.
// Costs about T / stride times the forward passes of score_bytes.
double score_bytes_sliding(LanguageModelImpl& model, const uint8_t* data, int64_t n, int64_t stride, int64_t batch,
                           const std::string& device, bool bf16 = false);

// MEGABYTE's strided inference (paper section 6.2): a second pass over the data offset by P/2 bytes, and
// for each byte the prediction made at the earlier position of its patch (windows as score_bytes, or as
// score_bytes_sliding when stride > 0). Twice the cost. Error unless the model is a megabyte with P >= 2.
// keep_late: keep the prediction from the later position instead (not the paper's rule; for comparison).
double score_bytes_strided(LanguageModelImpl& model, const uint8_t* data, int64_t n, int64_t stride, int64_t batch,
                           const std::string& device, bool bf16 = false, bool keep_late = false);

// Bits per byte of training's validation: `eval_batches` x `batch` fixed windows of the validation split
// (a seed-independent stream, so every evaluation of a run sees the same bytes), each scored from the
// model's start state. NaN if the split is empty. The model must be in eval mode. Data-parallel: rows
// [first_row, first_row + batch) of each draw, so the mean over ranks is one process's value at the global batch.
double validation_bpb(LanguageModelImpl& model, const Corpus& corpus, int64_t batch, int64_t eval_batches,
                      const std::string& device, bool bf16, int64_t first_row = 0);

struct FileScore {
  std::string path;
  int64_t bytes = 0;
  double nats = 0;     // summed over the file's bytes
  int64_t tokens = 0;  // the BPE baseline: tokens the bytes encode to (0 for byte models)
};
// Scores every file's part of the split (stride > 0: sliding windows; strided: MEGABYTE's strided
// inference); `progress(bytes done, bytes in all)` after each file.
std::vector<FileScore> score_files(LanguageModelImpl& model, const Corpus& corpus, Split split, int64_t batch,
                                   const std::string& device, bool bf16,
                                   const std::function<void(int64_t, int64_t)>& progress = {}, int64_t stride = 0,
                                   bool strided = false, bool strided_late = false);

}  // namespace bytelm
