// memory.cpp — malloc set-up and memory counters (see memory.h).
#include "util/memory.h"

#include <malloc.h>
#include <sys/resource.h>

#include <cstdlib>
#include <fstream>

namespace bytelm {

namespace {
std::string g_allocator = "not configured";
}

std::string configure_allocator() {
  const char* choice = std::getenv("BYTELM_MALLOC");
  const char* preload = std::getenv("LD_PRELOAD");
  if (choice && std::string(choice) == "system") return g_allocator = "system (BYTELM_MALLOC=system)";
  if (preload && *preload) return g_allocator = std::string("preloaded (") + preload + ")";
#ifdef __GLIBC__
  // Large blocks come from the heap, never from mmap (mmap'd blocks go back to the kernel on free, and
  // the next allocation of the same size faults every page in again); the heap is never trimmed; one
  // arena, so blocks freed by one thread are reused by the next allocation of any thread. The price: the
  // process keeps its high-water mark of memory until it exits (what PyTorch's caching allocators do too).
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, -1);  // -1 = the largest value: never trim
  mallopt(M_ARENA_MAX, 1);
  return g_allocator = "glibc, heap kept (mallopt)";
#else
  return g_allocator = "system";
#endif
}

std::string allocator_in_use() { return g_allocator; }

int64_t minor_page_faults() {
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return int64_t(u.ru_minflt);
}

CpuSeconds cpu_seconds() {
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  auto secs = [](const timeval& t) { return double(t.tv_sec) + 1e-6 * double(t.tv_usec); };
  return {secs(u.ru_utime), secs(u.ru_stime)};
}

void reset_peak_resident() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
}

}  // namespace bytelm
