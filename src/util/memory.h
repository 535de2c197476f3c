// memory.h — how this process uses memory: the malloc settings bytelm starts with, and the counters the
// bench reports (minor page faults, peak resident set). Torch-free.
//
// Why: glibc's malloc returns large freed blocks to the kernel (mmap'd blocks at once, the heap top past
// a threshold), so every training step mapped its big activation and gradient tensors afresh and faulted
// every page in again (measured ~90,000 faults, ~360 MB, per mb_cpu step). configure_allocator() makes
// malloc keep and reuse that memory instead.
#pragma once
#include <cstdint>
#include <string>

namespace bytelm {

// Sets glibc malloc up for tensor workloads (see memory.cpp); call first thing in main(). Does nothing
// when BYTELM_MALLOC=system is set (the C library's defaults, for comparison) or another allocator is
// preloaded. Returns a short description of what is in effect ("glibc, heap kept", "system", ...).
std::string configure_allocator();
// What configure_allocator() chose in this process ("not configured" if it was not called).
std::string allocator_in_use();

// Minor page faults of this process so far (getrusage).
int64_t minor_page_faults();
// CPU seconds this process has used so far, all threads: user and system (kernel: page faults, zeroing).
struct CpuSeconds {
  double user = 0, system = 0;
};
CpuSeconds cpu_seconds();
// Resets the kernel's peak-RSS mark to the current RSS (Linux >= 4.0, /proc/self/clear_refs), so that
// peak_rss_bytes() (util/platform.h) then gives the peak since now.
void reset_peak_resident();

}  // namespace bytelm
