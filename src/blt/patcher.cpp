// patcher.cpp — the BLT patching rules (see patcher.h for the alignment conventions and their sources).
// Every rule produces patch start positions over the covered length (N + 1 with the next id, N without);
// lengths are the gaps between starts. Semantics follow facebookresearch/blt bytelatent/data/patcher.py and
// HF transformers models/blt/modeling_blt.py; the code is written from those descriptions, not copied.
#include "blt/patcher.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "blt/hash.h"
#include "util/error.h"

namespace bytelm::blt {
namespace {

// Space-like ids (official find_space_patch_start_ids): specials, ASCII that is not a letter or digit, and
// UTF-8 lead bytes (>= 0xC0) — so a multi-byte character starts after a patch boundary. Continuation bytes
// (0x80..0xBF) are not space-like.
bool space_like(int64_t id) {
  if (id < kByteOffset) return true;
  int64_t b = id - kByteOffset;
  bool alnum = (b >= '0' && b <= '9') || (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z');
  return (b < 0x80 && !alnum) || b >= 0xC0;
}

float entropy_at(const float* entropies, int64_t i) {
  float h = entropies[i];
  if (std::isnan(h)) throw Error("patcher: entropy at position " + std::to_string(i) + " is NaN");
  return h;
}

}  // namespace

void PatcherOptions::validate() const {
  if (threshold && std::isnan(*threshold)) throw Error("patcher: threshold is NaN");
  if (relative_threshold && std::isnan(*relative_threshold)) throw Error("patcher: relative threshold is NaN");
  if (patch_size < 1) throw Error("patcher: patch_size must be >= 1, got " + std::to_string(patch_size));
  if (max_patch_length && *max_patch_length < 1)
    throw Error("patcher: max_patch_length must be >= 1, got " + std::to_string(*max_patch_length));
  if (mode == PatchingMode::Entropy) {
    if (rule != EntropyRule::Global && !relative_threshold)
      throw Error("patcher: the relative and combined entropy rules need a relative threshold");
    if (rule == EntropyRule::Combined && !threshold)
      throw Error("patcher: the combined entropy rule needs a global threshold");
  }
}

Patcher::Patcher(const PatcherOptions& options) : options_(options) { options_.validate(); }

std::vector<int64_t> Patcher::patch_starts(const int64_t* ids, const float* H, int64_t n, int64_t covered) const {
  // A start at p is only kept if p < covered; position 1 is dropped too when n == 1 without the next id.
  std::vector<int64_t> starts = {0};
  if (covered > 1) starts.push_back(1);
  switch (options_.mode) {
    case PatchingMode::Static:
      for (int64_t p = 1 + options_.patch_size; p < covered; p += options_.patch_size) starts.push_back(p);
      break;
    case PatchingMode::Byte:
      for (int64_t p = 2; p < covered; ++p) starts.push_back(p);
      break;
    case PatchingMode::Space:
      // A patch ends at i (so one starts at i + 1) if ids[i] is the first of a run of space-like ids, or is a
      // special id. Position 0 is never looked at: it is a patch of its own anyway.
      for (int64_t i = 1; i < n && i + 1 < covered; ++i) {
        bool ends = (space_like(ids[i]) && !space_like(ids[i - 1])) || ids[i] < kByteOffset;
        if (ends) starts.push_back(i + 1);
      }
      break;
    case PatchingMode::Entropy: {
      const std::optional<double>& theta = options_.threshold;
      const double theta_r = options_.relative_threshold.value_or(0);
      if (options_.rule == EntropyRule::Global && !theta) {
        // Top-k over candidates 2..n (the next id's position included even without it, as officially done;
        // a start at n then makes an empty patch, dropped by the caller).
        int64_t k = std::clamp<int64_t>(n / options_.patch_size - 2, 0, std::max<int64_t>(n - 1, 0));
        std::vector<int64_t> candidates(std::max<int64_t>(n - 1, 0));
        std::iota(candidates.begin(), candidates.end(), 2);
        std::stable_sort(candidates.begin(), candidates.end(),
                         [&](int64_t a, int64_t b) { return entropy_at(H, a - 1) > entropy_at(H, b - 1); });
        candidates.resize(k);
        std::sort(candidates.begin(), candidates.end());
        starts.insert(starts.end(), candidates.begin(), candidates.end());
        break;
      }
      for (int64_t p = 2; p <= n && p < covered; ++p) {
        bool start = false;
        switch (options_.rule) {
          case EntropyRule::Global:
            start = entropy_at(H, p - 1) > *theta;
            break;
          case EntropyRule::Relative:
            start = p == 2 || entropy_at(H, p - 1) - entropy_at(H, p - 2) > theta_r;
            break;
          case EntropyRule::Combined:
            start = p == 2 ||
                    (p >= 4 && entropy_at(H, p - 1) - entropy_at(H, p - 2) > theta_r && entropy_at(H, p - 1) > *theta);
            break;
        }
        if (start) starts.push_back(p);
      }
      break;
    }
  }
  return starts;
}

std::vector<int64_t> Patcher::patch_lengths(const int64_t* ids, const float* entropies, int64_t n) const {
  if (n < 1) throw Error("patcher: need at least one id, got " + std::to_string(n));
  if (ids == nullptr) throw Error("patcher: no ids");
  if (needs_entropies() && entropies == nullptr) throw Error("patcher: entropy patching needs entropies");
  if (options_.mode == PatchingMode::Space) {
    for (int64_t i = 0; i < n; ++i)
      if (ids[i] < 0 || ids[i] >= kVocab)
        throw Error("patcher: id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                    " is outside [0, 260)");
  }
  const Alignment alignment = options_.alignment;
  const bool hf_entropy = alignment == Alignment::HuggingFace && options_.mode == PatchingMode::Entropy;
  const int64_t covered = alignment == Alignment::SeenOnly ? n : n + 1;

  std::vector<int64_t> starts = patch_starts(ids, entropies, n, covered);
  // Top-k may propose the uncovered position n (SeenOnly); an empty trailing patch is dropped, as the
  // official Patcher.patch trims trailing zero lengths.
  while (starts.size() > 1 && starts.back() >= covered) starts.pop_back();
  std::vector<int64_t> lengths(starts.size());
  for (size_t i = 0; i < starts.size(); ++i) lengths[i] = (i + 1 < starts.size() ? starts[i + 1] : covered) - starts[i];

  if (hf_entropy) {
    // HF ends the last patch at n - 1: it loses the next id and may become 0 (the next id starts a patch).
    lengths.back() -= 1;
  }
  if (options_.max_patch_length) lengths = split_long_patches(lengths, *options_.max_patch_length, hf_entropy);
  return lengths;
}

std::vector<int64_t> split_long_patches(const std::vector<int64_t>& lengths, int64_t max_length, bool drop_zeros) {
  if (max_length < 1) throw Error("patcher: max_patch_length must be >= 1, got " + std::to_string(max_length));
  std::vector<int64_t> out;
  out.reserve(lengths.size());
  for (int64_t length : lengths) {
    if (length < 0) throw Error("patcher: negative patch length " + std::to_string(length));
    if (length == 0 && drop_zeros) continue;
    for (; length > max_length; length -= max_length) out.push_back(max_length);
    out.push_back(length);
  }
  return out;
}

void entropy_from_logits(const float* logits, int64_t positions, int64_t vocab, float* out) {
  if (positions < 0) throw Error("entropy: positions must be >= 0, got " + std::to_string(positions));
  if (vocab < 1) throw Error("entropy: vocab must be >= 1, got " + std::to_string(vocab));
  for (int64_t i = 0; i < positions; ++i) {
    const float* row = logits + i * vocab;
    double max = -INFINITY;
    for (int64_t v = 0; v < vocab; ++v) {
      if (std::isnan(row[v]) || row[v] == INFINITY)
        throw Error("entropy: logit " + std::to_string(v) + " at position " + std::to_string(i) + " is not finite");
      max = std::max(max, double(row[v]));
    }
    if (max == -INFINITY) throw Error("entropy: position " + std::to_string(i) + " has no finite logit");
    // With z = x - max and S = sum exp(z): H = log S - sum exp(z) z / S. Terms with exp(z) == 0 add nothing
    // (skipping them avoids 0 * -inf for -inf logits).
    double sum = 0, weighted = 0;
    for (int64_t v = 0; v < vocab; ++v) {
      double z = double(row[v]) - max;
      double e = std::exp(z);
      if (e == 0) continue;
      sum += e;
      weighted += e * z;
    }
    out[i] = float(std::log(sum) - weighted / sum);
  }
}

double mean_bytes_per_patch(const std::vector<int64_t>& lengths) {
  int64_t total = 0, patches = 0;
  for (int64_t length : lengths) {
    if (length < 0) throw Error("mean_bytes_per_patch: negative patch length " + std::to_string(length));
    total += length;
    patches += length > 0;
  }
  if (patches == 0) throw Error("mean_bytes_per_patch: no non-empty patch");
  return double(total) / double(patches);
}

}  // namespace bytelm::blt
