// platform.h — the machine: threads, which BLAS is loaded, measured matmul peak, memory, terminal.
// Torch-free interface (the implementation uses LibTorch).
#pragma once
#include <cstdint>
#include <string>

#include "util/format.h"

namespace bytelm {

// Sets LibTorch's intra-op threads (0 = all cores). Returns the number in use.
int setup_threads(int threads);

// The CPU BLAS this LibTorch was built with ("mkl" for PyPI's wheels; "" if it does not say).
std::string blas_name();

// Measures dense matmul throughput (FLOP/s) on the device: fp32 on CPU, bf16 on CUDA,
// square matrices of size n (0 = a size suited to the device), repeated for about `seconds`.
// The NVIDIA H100 SXM's dense bf16 tensor-core peak (989 TFLOP/s; 1979 is the 2:4-sparse figure):
// the MFU denominator on CUDA unless --peak-flops says otherwise.
constexpr double kH100DenseBf16Flops = 989e12;

double measure_matmul_peak(const std::string& device, int64_t n = 0, double seconds = 1.0);

// Peak resident set size of this process in bytes (VmHWM).
int64_t peak_rss_bytes();

// "LibTorch 2.11.0, CUDA compiled in (no GPU visible)": what this binary was built against and can see.
std::string torch_build_info();

}  // namespace bytelm

namespace bytelm {
// Throws Error unless `device` is "cpu" or an available "cuda[:N]".
void check_device(const std::string& device);
}  // namespace bytelm
