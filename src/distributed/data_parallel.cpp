// data_parallel.cpp — see data_parallel.h.
#include "distributed/data_parallel.h"

#include <chrono>
#include <cstdio>
#include <stdexcept>

#include "util/error.h"

namespace bytelm {

namespace {

constexpr int64_t kFirstBucketBytes = 1 << 20;  // as DDP's kDefaultFirstBucketBytes
constexpr int64_t kBucketBytes = 25 << 20;      // as DDP's kDefaultBucketBytesCap (bucket_cap_mb=25)

// A small host tensor reduced over the group: moved to the group's device, reduced in place by `op`, brought back.
torch::Tensor reduced_on_host(ProcessGroup& group, const torch::Tensor& host,
                              void (ProcessGroup::*op)(torch::Tensor&)) {
  auto t = host.to(group.device());
  (group.*op)(t);
  return t.cpu();
}

}  // namespace

DataParallel::DataParallel(const DistEnv& env, double timeout_s, const torch::Device& device) : env_(env) {
  if (!env.distributed()) return;
  const auto timeout = std::chrono::milliseconds(int64_t(timeout_s * 1000));
  group_ = std::make_unique<ProcessGroup>(env, timeout, device);
}

DataParallel::~DataParallel() = default;

void DataParallel::agree_on_start(bool failed, std::vector<std::pair<std::string, uint64_t>> settings) {
  if (!active()) return;
  if (!failed && settings.size() != kStartHashes) throw std::logic_error("agree_on_start: wrong number of settings");
  settings.resize(kStartHashes, {"", 0});
  // [failed, h_1 .. h_k] reduced with MAX, and the hashes with MIN: equal everywhere iff MIN == MAX.
  const int64_t k = int64_t(settings.size());
  auto hi = torch::zeros({k + 1}, torch::kInt64), lo = torch::zeros({k}, torch::kInt64);
  hi[0] = failed ? int64_t(env_.rank) + 1 : 0;  // the highest failing rank + 1
  for (int64_t i = 0; i < k; ++i) {
    hi[i + 1] = int64_t(settings[size_t(i)].second);
    lo[i] = int64_t(settings[size_t(i)].second);
  }
  hi = reduced_on_host(*group_, hi, &ProcessGroup::allreduce_max);
  lo = reduced_on_host(*group_, lo, &ProcessGroup::allreduce_min);
  if (failed) return;  // the caller rethrows its own error
  if (const int64_t bad = hi[0].item<int64_t>())
    throw Error("rank " + std::to_string(bad - 1) + " failed to start (see its error); stopping every rank");
  std::string differ;
  for (int64_t i = 0; i < k; ++i)
    if (hi[i + 1].item<int64_t>() != lo[i].item<int64_t>())
      differ += (differ.empty() ? "" : ", ") + settings[size_t(i)].first;
  if (!differ.empty())
    throw Error("ranks were launched with different " + differ +
                " (compared by hash at start); launch every rank with the same command, data and checkpoint");
}

void DataParallel::broadcast_from_root(const std::vector<torch::Tensor>& tensors) {
  if (!active()) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> views;
  for (const auto& t : tensors) views.push_back(t.detach());
  group_->broadcast(views, 0);
}

void DataParallel::set_parameters(const std::vector<torch::Tensor>& params) {
  buckets_.clear();
  if (!active()) return;
  int64_t cap = kFirstBucketBytes, bytes = 0;
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    if (buckets_.empty() || bytes >= cap) {
      if (!buckets_.empty()) cap = kBucketBytes;
      buckets_.push_back({});
      bytes = 0;
    }
    buckets_.back().params.push_back(*it);
    bytes += it->numel() * 4;
  }
  for (auto& b : buckets_) {
    int64_t n = 0;
    for (const auto& p : b.params) n += p.numel();
    b.flat = torch::empty({n}, torch::TensorOptions(torch::kFloat32).device(group_->device()));
  }
}

void DataParallel::reduce_gradients() {
  if (!active()) return;
  torch::NoGradGuard no_grad;
  std::vector<ProcessGroup::Pending> pending;
  for (auto& b : buckets_) {
    int64_t off = 0;
    for (auto& p : b.params) {
      const int64_t n = p.numel();
      // A parameter without a gradient this step (an unused branch) contributes zeros, so every rank sends
      // the same layout; it then gets a zero gradient, where one process would leave it undefined.
      if (p.grad().defined())
        b.flat.narrow(0, off, n).copy_(p.grad().reshape({n}));
      else
        b.flat.narrow(0, off, n).zero_();
      off += n;
    }
    pending.push_back(group_->allreduce_sum_async(b.flat));
  }
  const double inv = 1.0 / double(world());
  for (size_t i = 0; i < buckets_.size(); ++i) {
    pending[i]();
    Bucket& b = buckets_[i];
    b.flat.mul_(inv);  // the mean (Gloo has no ReduceOp::AVG; NCCL's would save only this multiply)
    int64_t off = 0;
    for (auto& p : b.params) {
      const int64_t n = p.numel();
      auto mean = b.flat.narrow(0, off, n).view(p.sizes());
      if (p.grad().defined())
        p.mutable_grad().copy_(mean);
      else
        p.mutable_grad() = mean.clone();
      off += n;
    }
  }
}

std::pair<double, bool> DataParallel::step_summary(double loss, bool interrupted) {
  if (!active()) return {loss, interrupted};
  const auto t = reduced_on_host(*group_, torch::tensor({loss, interrupted ? 1.0 : 0.0}, torch::kFloat64),
                                 &ProcessGroup::allreduce_sum);
  return {t[0].item<double>() / double(world()), t[1].item<double>() > 0};
}

double DataParallel::mean(double value) {
  if (!active()) return value;
  const auto t = reduced_on_host(*group_, torch::tensor({value}, torch::kFloat64), &ProcessGroup::allreduce_sum);
  return t[0].item<double>() / double(world());
}

void DataParallel::barrier() {
  if (active()) group_->barrier();
}

}  // namespace bytelm
