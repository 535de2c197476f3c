// blas_core.h — picks OpenBLAS's kernels for CPUs that OpenBLAS 0.3.21 (Debian 12) does not recognise.
// Torch-free.
//
// Why: OpenBLAS chooses its kernels once, when it loads, from the CPU model. A model newer than the
// library (e.g. Intel family 6 model 207, Emerald Rapids) falls back to "Prescott", SSE3-only kernels:
// measured 2-4x slower matmuls and matrix-vector products on such a machine than with its AVX-512
// kernels (SkylakeX). OPENBLAS_CORETYPE overrides the choice but is read only at load time, so the
// process has to start again with it set.
#pragma once

namespace bytelm {

// The OPENBLAS_CORETYPE worth setting for this CPU ("SkylakeX" with AVX-512, "Haswell" with AVX2 and FMA)
// when the OpenBLAS loaded in this process chose weaker kernels; "" when it chose well, when the user set
// OPENBLAS_CORETYPE, or when the BLAS is not OpenBLAS.
const char* better_openblas_core();

// If better_openblas_core() names a core: sets OPENBLAS_CORETYPE and re-executes this program with the
// same arguments — unless OMP_WAIT_POLICY is unset, because main() then re-executes itself anyway right
// after this call (see src/cli/main.cpp). Call first thing in main().
void use_better_openblas_core(char** argv);

}  // namespace bytelm
