// memory_check.cpp — see memory_check.h.
#include "train/memory_check.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

#include "model/config.h"
#include "util/error.h"

namespace bytelm {

namespace {

// Floats a pre-norm SwiGLU block keeps per position for backward, per unit of width: two norms, q, k, v,
// attention output, projection, and the MLP's gate, up, activation and product (hidden ~ 8/3 width).
// Counted low (16, not the ~20 of a full tally) so the check never refuses a run that fits.
constexpr double kFloatsPerWidth = 16;

double stack_floats_per_byte(const StackConfig& s, double positions_per_byte) {
  return double(s.layers) * double(s.width) * positions_per_byte * kFloatsPerWidth;
}

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

int64_t estimate_training_bytes(const ModelConfig& cfg, int64_t params, int64_t batch) {
  // Logits, their softmax and its gradient, per position (bpe: per token, over its vocabulary).
  double floats_per_byte = 3.0 * double(cfg.model == "bpe" ? cfg.vocab_size : 256);
  if (cfg.model == "megabyte") {
    // Global: K = T/P positions of width P*D_G; local: every byte, width D_L.
    floats_per_byte += stack_floats_per_byte(cfg.global, 1.0 / double(cfg.patch_size));
    floats_per_byte += stack_floats_per_byte(cfg.local, 1.0);
  } else if (cfg.model == "blt") {
    const double patch = double(std::max<int64_t>(1, cfg.patching.patch_size));
    floats_per_byte += stack_floats_per_byte(cfg.encoder, 1.0) + stack_floats_per_byte(cfg.decoder, 1.0);
    floats_per_byte += stack_floats_per_byte(cfg.global, 1.0 / patch);
  } else {
    floats_per_byte += stack_floats_per_byte(cfg.global, 1.0);
  }
  const double activations = 4.0 * floats_per_byte * double(cfg.context) * double(batch);
  const double state = 16.0 * double(params);  // weights, gradients, two AdamW moments (fp32)
  return int64_t(std::min(activations + state, 9.0e18));
}

void check_training_memory(const ModelConfig& cfg, int64_t params, int64_t batch) {
  const int64_t need = estimate_training_bytes(cfg, params, batch), have = usable_memory_bytes();
  if (have > 0 && need > have)
    throw Error("--batch " + std::to_string(batch) + ": a training step needs at least " + gib(need) +
                " (estimated for context " + std::to_string(cfg.context) + "), more than the " + gib(have) +
                " this machine allows; lower --batch (and raise --accum to keep the tokens per step)");
}

}  // namespace bytelm
