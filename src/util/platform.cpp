// platform.cpp — see platform.h.
#include "util/platform.h"

#include "util/device.h"

#include <ATen/Version.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

#include <torch/torch.h>

namespace bytelm {

namespace {
// LibTorch's default warning handler logs through glog ("WARNING: Logging before InitGoogleLogging()"
// plus a multi-line record). bytelm prints one line per warning, and drops notes that an op is in beta.
void print_warning(const std::string& msg) {
  if (msg.find("is in beta") != std::string::npos) return;
  std::fprintf(stderr, "bytelm: torch warning: %s\n", msg.substr(0, msg.find('\n')).c_str());
}
class OneLineWarnings : public c10::WarningHandler {
 public:
  void process(const c10::Warning& w) override { print_warning(w.msg()); }
};
}  // namespace

int setup_threads(int threads) {
  static OneLineWarnings handler;
  c10::WarningUtils::set_warning_handler(&handler);
  if (threads <= 0) threads = std::max(1u, std::thread::hardware_concurrency());
  torch::set_num_threads(threads);  // intra-op (OpenMP) pool
  // Inter-op pool: can be sized only once per process, before it is first used.
  static bool interop_set = false;
  if (!interop_set) {
    interop_set = true;
    try {
      torch::set_num_interop_threads(threads);
    } catch (const c10::Error&) {
    }
  }
  // The wheel's MKL runs on the same OpenMP pool, which set_num_threads sizes (MKL's count included).
  return torch::get_num_threads();
}

std::string blas_name() {
  // PyPI's LibTorch links its BLAS statically (MKL), so it is named by the build configuration, not by a
  // loaded library.
  const std::string config = at::show_config();
  const auto at = config.find("BLAS_INFO=");
  if (at == std::string::npos) return "";
  const auto begin = at + std::strlen("BLAS_INFO=");
  return config.substr(begin, config.find_first_of(", \n", begin) - begin);
}

double measure_matmul_peak(const std::string& device, int64_t n, double seconds) {
  torch::NoGradGuard no_grad;
  const bool cuda = device.rfind("cuda", 0) == 0;
  if (n <= 0) n = cuda ? 8192 : 1024;
  auto opts = torch::TensorOptions().dtype(cuda ? torch::kBFloat16 : torch::kFloat32).device(device);
  auto a = torch::randn({n, n}, opts), b = torch::randn({n, n}, opts), c = torch::empty({n, n}, opts);
  auto sync = [&] {
    if (cuda) c.cpu();
  };
  for (int i = 0; i < 2; ++i) torch::mm_out(c, a, b);  // warm-up
  sync();
  double best = 0;
  auto t_end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  do {
    auto t0 = std::chrono::steady_clock::now();
    int reps = cuda ? 10 : 1;
    for (int i = 0; i < reps; ++i) torch::mm_out(c, a, b);
    sync();
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, reps * 2.0 * n * n * n / dt);
  } while (std::chrono::steady_clock::now() < t_end);
  return best;
}

int64_t peak_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;
  return 0;
}

std::string torch_build_info() {
  std::string s = "LibTorch " + std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
                  std::to_string(TORCH_VERSION_PATCH);
#ifdef BYTELM_CUDA
  const auto gpus = torch::cuda::device_count();
  s += ", CUDA compiled in (" + (gpus ? std::to_string(gpus) + " GPU(s) visible" : std::string("no GPU visible")) + ")";
#else
  s += ", CPU only (no CUDA)";
#endif
  return s;
}

}  // namespace bytelm

#include "util/error.h"

namespace bytelm {
void check_device(const std::string& device) {
  if (device == "cpu") return;
  if (device.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available())
      throw Error("--device " + device +
                  (cuda_compiled() ? ": no CUDA device is visible (this build has CUDA)"
                                   : ": this bytelm was built without CUDA"));
    try {
      torch::Device d(device);
      if (d.has_index() && d.index() >= int(torch::cuda::device_count()))
        throw Error("--device " + device + ": no such GPU");
    } catch (const c10::Error&) {
      throw Error("--device " + device + ": invalid device (expected cpu, cuda or cuda:N)");
    }
    return;
  }
  throw Error("--device " + device + ": invalid device (expected cpu, cuda or cuda:N)");
}
}  // namespace bytelm
