// blas_core.cpp — see blas_core.h.
#include "util/blas_core.h"

#include <dlfcn.h>
#include <strings.h>
#include <unistd.h>

#include <cstdlib>
#include <initializer_list>

namespace bytelm {

namespace {
bool core_is_one_of(const char* core, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (strcasecmp(core, n) == 0) return true;
  return false;
}
}  // namespace

const char* better_openblas_core() {
  if (std::getenv("OPENBLAS_CORETYPE")) return "";
  // openblas_get_corename() is exported by OpenBLAS only; look it up in whatever is loaded.
  using CoreName = char* (*)();
  auto corename = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (!corename || !corename()) return "";
  const char* core = corename();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512cd");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx512 && !core_is_one_of(core, {"SkylakeX", "Cooperlake", "SapphireRapids"})) return "SkylakeX";
  if (!avx512 && avx2 && !core_is_one_of(core, {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"}))
    return "Haswell";
  return "";
}

void use_better_openblas_core(char** argv) {
  const char* core = better_openblas_core();
  if (!*core) return;
  setenv("OPENBLAS_CORETYPE", core, 1);
  if (std::getenv("OMP_WAIT_POLICY")) execv("/proc/self/exe", argv);  // returns only on failure
}

}  // namespace bytelm
