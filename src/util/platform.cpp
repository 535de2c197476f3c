// platform.cpp — see platform.h.
#include "util/platform.h"

#include "util/device.h"

#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
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
#if TORCH_VERSION_MAJOR >= 2
  void process(const c10::Warning& w) override { print_warning(w.msg()); }
#else
  void process(const c10::SourceLocation&, const std::string& msg, const bool) override { print_warning(msg); }
#endif
};
}  // namespace

int setup_threads(int threads) {
  static OneLineWarnings handler;
#if TORCH_VERSION_MAJOR >= 2
  c10::WarningUtils::set_warning_handler(&handler);
#else
  c10::Warning::set_warning_handler(&handler);
#endif
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
  // OpenBLAS keeps its own thread pool, which ignores LibTorch's setting (measured: --threads 1 trained at
  // 188% CPU). Size it through OpenBLAS's own call when that is the BLAS loaded.
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(threads);
  return torch::get_num_threads();
}

namespace {
int collect_lib(struct dl_phdr_info* info, size_t, void* data) {
  auto* out = static_cast<std::vector<std::string>*>(data);
  if (info->dlpi_name && *info->dlpi_name) out->push_back(info->dlpi_name);
  return 0;
}
}  // namespace

std::string loaded_blas() {
  std::vector<std::string> libs;
  dl_iterate_phdr(collect_lib, &libs);
  std::string found;
  for (const auto& lib : libs) {
    char resolved[PATH_MAX];
    std::string path = realpath(lib.c_str(), resolved) ? resolved : lib;
    std::string base = path.substr(path.find_last_of('/') + 1);
    if (base.find("blas") == std::string::npos && base.find("mkl") == std::string::npos) continue;
    // The libblas.so.3 interface library names the implementation by its directory.
    if (found.empty() || base.rfind("libblas.so", 0) == 0) found = path;
  }
  return found;
}

void warn_if_slow_blas() {
  static bool warned = false;
  if (warned) return;
  warned = true;
  std::string blas = loaded_blas();
  // Debian's reference BLAS lives in .../blas/libblas.so.3; OpenBLAS in .../openblas-*/libblas.so.3.
  if (blas.find("/blas/libblas.so") != std::string::npos)
    std::fprintf(stderr,
                 "bytelm: warning: the reference BLAS (%s) is loaded, matmuls run ~12x slower; "
                 "install OpenBLAS: apt-get install libopenblas0-pthread\n",
                 blas.c_str());
}

double measure_matmul_peak(const std::string& device, int64_t n, double seconds) {
  torch::NoGradGuard no_grad;
  const bool cuda = device.rfind("cuda", 0) == 0;
  if (n <= 0) n = cuda ? 8192 : 1024;
  auto opts = torch::TensorOptions().dtype(cuda ? torch::kBFloat16 : torch::kFloat32).device(device);
  auto a = torch::randn({n, n}, opts), b = torch::randn({n, n}, opts), c = torch::empty({n, n}, opts);
  auto sync = [&] { if (cuda) c.cpu(); };
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
  s += ", CUDA build (" + std::string(torch::cuda::is_available() ? "a GPU is visible" : "no GPU visible") + ")";
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
      throw Error("--device " + device + (cuda_compiled() ? ": no CUDA device is visible (this build has CUDA)"
                                                          : ": this bytelm was built without CUDA"));
    try {
      torch::Device d(device);
      if (d.has_index() && d.index() >= int(torch::cuda::device_count())) throw Error("--device " + device + ": no such GPU");
    } catch (const c10::Error&) {
      throw Error("--device " + device + ": invalid device (expected cpu, cuda or cuda:N)");
    }
    return;
  }
  throw Error("--device " + device + ": invalid device (expected cpu, cuda or cuda:N)");
}
}  // namespace bytelm
