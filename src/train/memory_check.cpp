// memory_check.cpp — see memory_check.h.
#include "train/memory_check.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

#include "util/error.h"

namespace bytelm {

namespace {

std::string gib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", double(bytes) / double(1LL << 30));
  return buf;
}

}  // namespace

int64_t usable_memory_bytes() {
  int64_t total = int64_t(sysconf(_SC_PHYS_PAGES)) * int64_t(sysconf(_SC_PAGE_SIZE));
  struct rlimit lim {};
  if (getrlimit(RLIMIT_AS, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY)
    total = std::min<int64_t>(total, int64_t(lim.rlim_cur));
  std::ifstream cg("/sys/fs/cgroup/memory.max");
  std::string v;
  if (cg >> v && v != "max") total = std::min<int64_t>(total, std::stoll(v));
  return std::max<int64_t>(total, 0);
}

int64_t estimate_training_bytes(const TrainingFootprint& f, int64_t batch) {
  const double activations = 4.0 * f.activation_floats_per_byte * double(f.context) * double(batch);
  const double state = 16.0 * double(f.params);  // weights, gradients, two AdamW moments (fp32)
  return int64_t(std::min(activations + state, 9.0e18));
}
void check_training_memory(const TrainingFootprint& f, int64_t batch) {
  const int64_t need = estimate_training_bytes(f, batch), have = usable_memory_bytes();
  if (have > 0 && need > have)
    throw Error("--batch " + std::to_string(batch) + ": a training step needs at least " + gib(need) +
                " (estimated for context " + std::to_string(f.context) + "), more than the " + gib(have) +
                " this machine allows; lower --batch (and raise --accum to keep the tokens per step)");
}

}  // namespace bytelm
