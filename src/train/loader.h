// loader.h — training batches prepared on a background thread. While a step computes, the thread samples
// the next windows (Corpus::sample, a pure function of (seed, index)) into host tensors — pinned memory
// when the device is a GPU, so the copy to the device is asynchronous — and next() hands them out in order.
#pragma once
#include <torch/torch.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "data/corpus.h"

namespace bytelm {

class BatchLoader {
 public:
  // Batch j (j = 0, 1, ...) holds Corpus::sample(split, seed, first + j, rows, cols); up to `depth` are
  // prepared ahead; first_row > 0 takes rows [first_row, first_row + rows) of each draw (a data-parallel
  // rank's share). The corpus must outlive the loader.
  BatchLoader(const Corpus& corpus, Split split, uint64_t seed, int64_t rows, int64_t cols, uint64_t first,
              const torch::Device& device, int depth = 2, int64_t first_row = 0);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // The next batch: (rows, cols) int64 byte values on the device. Rethrows an error of the thread.
  torch::Tensor next();

 private:
  void run();

  const Corpus& corpus_;
  const Split split_;
  const uint64_t seed_;
  const int64_t rows_, cols_, first_row_;
  uint64_t index_;
  const torch::Device device_;
  const size_t depth_;
  const bool pinned_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<torch::Tensor> ready_;  // (rows, cols) uint8 on the host
  std::exception_ptr error_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace bytelm
