// process_group.cpp — see process_group.h; the store, the Gloo backend and the collectives (the NCCL backend
// is in process_group_nccl.cpp). Needs USE_C10D_GLOO: without it ProcessGroupGloo.hpp is silently empty
// (TorchConfig.cmake does not define it). It is defined here rather than on the command line so this file
// keeps the library's precompiled torch header (a differing -D would make GCC ignore it). The PyPI wheel
// ships no gloo/*.h headers: they come from Debian's libgloo-dev, the symbols from libtorch_cpu.so. Only
// Gloo's device handles cross that line (created and used inside LibTorch), so the headers' version need
// not match the one LibTorch was built with (the data-parallel tests run this path).
#include "distributed/process_group.h"

#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <dlfcn.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "distributed/backends.h"
#include "util/error.h"

namespace bytelm {

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;  // ProcessGroupGloo or ProcessGroupNCCL
};

namespace {

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

// Waits for a collective; a failure (peer gone, timeout) ends the run with exit code 1.
void wait_or_fail(const c10::intrusive_ptr<c10d::Work>& work, const char* what) {
  try {
    work->wait();
  } catch (const std::exception& e) {
    throw Error(std::string("distributed ") + what + " failed: " + first_line(e.what()) +
                    " (a peer died, stopped answering within --dist-timeout, or failed)",
                1);
  }
}

// c10d logs its own connection errors through glog (a "Logging before InitGoogleLogging" banner, then the
// message), which would break the one-line error contract; the exception we rethrow carries the same
// message. So raise glog's threshold to FATAL for this process. Looked up at run time because glog is
// LibTorch's dependency, not one bytelm links; GLOG_minloglevel=0 in the environment keeps the logs.
void quiet_c10d_logging() {
  if (const char* v = std::getenv("GLOG_minloglevel"); v && *v) return;
  if (auto* level = static_cast<int32_t*>(dlsym(RTLD_DEFAULT, "_ZN3fLI17FLAGS_minloglevelE"))) *level = 3;
}

bool is_loopback(const std::string& host) { return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1"; }

// Gloo's network device: GLOO_SOCKET_IFNAME when set (as in PyTorch), loopback when the whole group is on
// this host, else the address this host's name resolves to. Never MASTER_ADDR itself on a multi-host run:
// that is rank 0's address, not ours.
std::shared_ptr<gloo::transport::Device> gloo_device(const DistEnv& env) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"))
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  if (is_loopback(env.master_addr)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

c10::intrusive_ptr<c10d::Backend> make_gloo_backend(const c10::intrusive_ptr<c10d::Store>& store, const DistEnv& env,
                                                    std::chrono::milliseconds timeout) {
  auto opts = c10d::ProcessGroupGloo::Options::create(timeout);  // the group's timeout: every collective
  opts->devices.push_back(gloo_device(env));
  opts->threads = 2;
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, opts);
}

}  // namespace

#ifndef BYTELM_CUDA
c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>&, const DistEnv&,
                                                    std::chrono::milliseconds, const torch::Device&) {
  throw Error("data-parallel training on CUDA needs NCCL, and this bytelm was built without CUDA");
}
#endif

ProcessGroup::ProcessGroup(const DistEnv& env, std::chrono::milliseconds timeout, torch::Device device)
    : impl_(std::make_unique<Impl>()), rank_(env.rank), size_(env.world_size), timeout_(timeout), device_(device) {
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  quiet_c10d_logging();
  try {
    c10d::TCPStoreOptions so;
    so.port = uint16_t(env.master_port);
    so.timeout = timeout;
    if (env.agent_store) {
      // torchrun's agent already serves a store there; a second server would fail with "address in use".
      so.isServer = false;
      impl_->store = c10::make_intrusive<c10d::PrefixStore>("/worker/attempt_" + std::to_string(env.restart_count),
                                                            c10::make_intrusive<c10d::TCPStore>(env.master_addr, so));
    } else {
      so.isServer = env.rank == 0;
      so.numWorkers = size_t(env.world_size);
      so.waitWorkers = true;
      impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    }
    impl_->backend = device.is_cuda() ? make_nccl_backend(impl_->store, env, timeout, device)
                                      : make_gloo_backend(impl_->store, env, timeout);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error("distributed: rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) +
                " could not join the group at " + where + " within --dist-timeout: " + first_line(e.what()));
  }
}

ProcessGroup::~ProcessGroup() = default;

void ProcessGroup::broadcast(std::vector<torch::Tensor>& tensors, int root) {
  c10d::BroadcastOptions o;
  o.rootRank = root;
  for (auto& t : tensors) {
    std::vector<torch::Tensor> one{t};
    wait_or_fail(impl_->backend->broadcast(one, o), "broadcast");
  }
}

ProcessGroup::Pending ProcessGroup::allreduce_sum_async(torch::Tensor& tensor) {
  std::vector<torch::Tensor> one{tensor};
  auto work = impl_->backend->allreduce(one);  // ReduceOp::SUM; Gloo has no AVG (divide afterwards)
  return [work] { wait_or_fail(work, "all-reduce"); };
}

void ProcessGroup::allreduce_min(torch::Tensor& tensor) {
  std::vector<torch::Tensor> one{tensor};
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::MIN;
  wait_or_fail(impl_->backend->allreduce(one, o), "all-reduce");
}

void ProcessGroup::allreduce_max(torch::Tensor& tensor) {
  std::vector<torch::Tensor> one{tensor};
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::MAX;
  wait_or_fail(impl_->backend->allreduce(one, o), "all-reduce");
}

void ProcessGroup::allgather(std::vector<torch::Tensor>& out, torch::Tensor& in) {
  std::vector<std::vector<torch::Tensor>> outs{out};
  std::vector<torch::Tensor> ins{in};
  wait_or_fail(impl_->backend->allgather(outs, ins), "all-gather");
}

void ProcessGroup::barrier() { wait_or_fail(impl_->backend->barrier(), "barrier"); }

}  // namespace bytelm
