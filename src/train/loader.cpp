// loader.cpp — see loader.h.
#include "train/loader.h"

namespace bytelm {

BatchLoader::BatchLoader(const Corpus& corpus, Split split, uint64_t seed, int64_t rows, int64_t cols, uint64_t first,
                         const torch::Device& device, int depth, int64_t first_row)
    : corpus_(corpus),
      split_(split),
      seed_(seed),
      rows_(rows),
      cols_(cols),
      first_row_(first_row),
      index_(first),
      device_(device),
      depth_(size_t(std::max(1, depth))),
      pinned_(device.is_cuda()),
      thread_([this] { run(); }) {}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void BatchLoader::run() {
  try {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || ready_.size() < depth_; });
        if (stop_) return;
      }
      // A fresh host tensor per batch: LibTorch's pinned-memory allocator keeps a block alive until the
      // asynchronous copy that reads it has finished, so it is never overwritten in flight.
      auto host = torch::empty({rows_, cols_}, torch::TensorOptions().dtype(torch::kUInt8).pinned_memory(pinned_));
      corpus_.sample(split_, seed_, index_++, rows_, cols_, host.data_ptr<uint8_t>(), first_row_);
      {
        std::lock_guard<std::mutex> lock(mu_);
        ready_.push_back(std::move(host));
      }
      cv_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = std::current_exception();
    cv_.notify_all();
  }
}

torch::Tensor BatchLoader::next() {
  torch::Tensor host;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !ready_.empty() || error_; });
    if (ready_.empty()) std::rethrow_exception(error_);
    host = std::move(ready_.front());
    ready_.pop_front();
  }
  cv_.notify_all();
  // Bytes travel as uint8 (8x less than int64) and are widened on the device.
  return host.to(device_, /*non_blocking=*/pinned_).to(torch::kLong);
}

}  // namespace bytelm
