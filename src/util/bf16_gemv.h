// bf16_gemv.h — y = W x for one row of activations, with W stored as bfloat16 (the upper 16 bits of an
// IEEE fp32) and x, y, the products and the sums in fp32. Batch-1 decoding on the CPU reads every weight
// once per byte and is bound by memory bandwidth; halving the bytes read is what makes it faster.
// AVX-512 or AVX2+FMA kernels chosen at run time, a portable loop otherwise. No LibTorch here.
#pragma once
#include <cstdint>

namespace bytelm {

// Rows [row_begin, row_end) of y = W x. w: (rows, n) row-major bf16 bits; x: (n); y: (rows).
void bf16_gemv_rows(const uint16_t* w, const float* x, float* y, int64_t row_begin, int64_t row_end, int64_t n);

// Name of the kernel bf16_gemv_rows uses on this CPU: "avx512", "avx2" or "portable".
const char* bf16_gemv_kernel();

// The same product with the named kernel (for tests of every kernel this CPU can run); false, computing
// nothing, if the CPU lacks it or the name is unknown.
bool bf16_gemv_rows_using(const char* kernel, const uint16_t* w, const float* x, float* y, int64_t row_begin,
                          int64_t row_end, int64_t n);

}  // namespace bytelm
