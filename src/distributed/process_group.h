// process_group.h — one c10d process group: Gloo for CPU tensors, NCCL for CUDA tensors. The only place
// that sees c10d.
//
// Built on PyTorch's own engine, so a bytelm worker joins the group exactly as a Python torch.distributed
// worker would: a TCPStore at MASTER_ADDR:MASTER_PORT (rank 0 hosts it, or under torchrun's static
// rendezvous every rank is a client of the agent's store, prefixed "/worker/attempt_<restart>" as Python's
// env:// does), then c10d's ProcessGroupGloo (device CPU) or ProcessGroupNCCL (device cuda:LOCAL_RANK, in a
// build whose LibTorch has CUDA). Every tensor passed to a collective must be on device().
//
// Every call is blocking unless it returns a Pending. A failed or timed-out collective (a peer died, hung
// past the timeout, or left) throws Error with exit code 1: the group is unusable afterwards and the run
// must end; nothing is retried.
#pragma once
#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "distributed/dist_env.h"

namespace bytelm {

class ProcessGroup {
 public:
  // Forms the group of env.world_size ranks on `device` (CPU: Gloo; CUDA: NCCL). `timeout` bounds the
  // rendezvous and every collective. A rendezvous that fails (a rank never came, a bad address or port)
  // throws Error (exit 2); NCCL asked of a build without CUDA throws Error (exit 2).
  ProcessGroup(const DistEnv& env, std::chrono::milliseconds timeout, torch::Device device = torch::kCPU);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  const torch::Device& device() const { return device_; }

  // An operation in flight: wait() blocks until done and throws Error (exit 1) on failure.
  using Pending = std::function<void()>;

  void broadcast(std::vector<torch::Tensor>& tensors, int root);  // in place, from root
  Pending allreduce_sum_async(torch::Tensor& tensor);             // in place: the sum over ranks
  void allreduce_sum(torch::Tensor& tensor) { allreduce_sum_async(tensor)(); }
  void allreduce_min(torch::Tensor& tensor);
  void allreduce_max(torch::Tensor& tensor);
  // out[k] receives rank k's `in`; every rank's `in` has the same shape and dtype.
  void allgather(std::vector<torch::Tensor>& out, torch::Tensor& in);
  void barrier();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rank_ = 0, size_ = 1;
  std::chrono::milliseconds timeout_;
  torch::Device device_;
};

}  // namespace bytelm
