// data_parallel.h — the hooks a training run needs to run data-parallel over a ProcessGroup, in the order
// the trainer calls them: agree on the settings at start, broadcast rank 0's weights, all-reduce the
// gradients once per optimiser step, agree on the step's loss and on stopping, barrier after rank 0's writes.
//
// Gradients travel in flat fp32 buckets like PyTorch DDP's Reducer: parameters in reverse registration order
// (roughly the order backward produces them), a 1 MiB first bucket and 25 MiB after it. Every bucket's
// all-reduce is started before the first is waited for, so packing and unpacking overlap the transfers.
// Deviation from DDP: the reduce starts after backward, not from autograd hooks during it. On a CPU the
// backward pass and Gloo's threads compete for the same cores (2 here), so overlapping buys little; the
// multi-node arithmetic in docs/distributed.md says when it would. On CUDA (NCCL) the buckets live on the device.
//
// With one process and no launcher there is no group and every hook is a no-op, so the trainer calls them
// unconditionally.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "distributed/dist_env.h"
#include "distributed/process_group.h"

namespace bytelm {

class DataParallel {
 public:
  // Forms the group when env.world_size > 1 (see ProcessGroup): Gloo on the CPU, NCCL when `device` is a
  // CUDA device (the rank's own, cuda:LOCAL_RANK). timeout_s bounds every collective.
  DataParallel(const DistEnv& env, double timeout_s, const torch::Device& device = torch::kCPU);
  ~DataParallel();

  bool active() const { return group_ != nullptr; }
  int rank() const { return env_.rank; }
  int world() const { return env_.world_size; }
  bool is_root() const { return env_.rank == 0; }
  const DistEnv& env() const { return env_; }
  ProcessGroup* group() { return group_.get(); }

  // Every rank reports whether its set-up failed and named hashes of what it will compute (options,
  // model, data, step). A failure anywhere, or a hash that differs between ranks, throws Error (exit 2) on
  // every rank: the failing rank has already printed its own reason, the others name it. Exactly
  // kStartHashes settings (a failed rank may pass none), so every rank's collective has the same size.
  static constexpr size_t kStartHashes = 4;
  void agree_on_start(bool failed, std::vector<std::pair<std::string, uint64_t>> settings);

  // Rank 0's values into every rank's tensors (weights and buffers at start).
  void broadcast_from_root(const std::vector<torch::Tensor>& tensors);

  // The parameters whose gradients reduce_gradients() averages; sets up the buckets.
  void set_parameters(const std::vector<torch::Tensor>& params);
  // After the last micro-batch's backward: every .grad becomes the mean over ranks.
  void reduce_gradients();

  // One small all-reduce per step: the mean of `loss` over ranks, and whether any rank was interrupted.
  std::pair<double, bool> step_summary(double loss, bool interrupted);
  double mean(double value);  // over ranks
  void barrier();

 private:
  struct Bucket {
    std::vector<torch::Tensor> params;
    torch::Tensor flat;  // (sum of numels,) fp32
  };
  DistEnv env_;
  std::unique_ptr<ProcessGroup> group_;
  std::vector<Bucket> buckets_;
};

}  // namespace bytelm
