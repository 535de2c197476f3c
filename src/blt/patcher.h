// patcher.h — BLT patchers: where the byte sequence is cut into patches for the global model.
// Input: N ids (see blt/hash.h) of one sequence, id 0 normally BOS; for entropy patching also N entropies,
// H[i] = entropy in nats of the entropy model's distribution for id i + 1 (computed at position i).
// Output: patch lengths in order. Every rule makes position 0 a patch of its own and starts a patch at
// position 1, so patch j + 1 is decoded from global state j, which has seen the byte before it.
//
// Alignment (what the lengths cover), as the two reference implementations do it:
// - NextByte (default): lengths sum to N + 1; the last patch also holds the not-yet-seen next id, and is a
//   patch of its own when the next id starts one. facebookresearch/blt `ByteLatentTransformer.forward` and
//   `generate_nocache` call `Patcher.patch(tokens, include_next_token=True)`.
// - SeenOnly: lengths sum to N (official `Patcher.patch` with its default include_next_token=False).
// - HuggingFace: HF `BltPatcher.patch_lengths_from_entropies` (called from `BltModel.forward`) decides starts
//   at positions 2..N like NextByte but ends the last patch at N - 1: lengths sum to N and the last one is 0
//   when the next id starts a patch. `process_patch_lengths` then drops that 0 if max_patch_length is set.
//   Without max_patch_length this gives the same patch ids for positions 0..N-1 and the same patch count as
//   NextByte. HF implements only entropy patching; for every other mode its fallback is N + 1 patches of 1,
//   so for non-entropy modes HuggingFace behaves as NextByte.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

namespace bytelm::blt {

enum class PatchingMode {
  Static,   // position 0 alone, then patch_size ids per patch (the last one shorter). The official code gets
            // these cuts by prepending patch_size - 1 BOE ids and cutting every patch_size; HF has no static
            // mode
  Byte,     // one id per patch
  Space,    // a patch ends after the first of a run of space-like ids (special ids, ASCII other than letters
            // and digits, UTF-8 lead bytes >= 0xC0) and after every special id [find_space_patch_start_ids]
  Entropy,  // cut where the entropy model is unsure (rule below)
};

// Entropy rules, for position p >= 2 (positions 0 and 1 always start patches). Official names in brackets.
enum class EntropyRule {
  Global,    // start if H[p-1] > threshold; if threshold is unset, top-k: the N / patch_size - 2 positions in
             // 2..N with the largest H[p-1] start patches (ties: earlier first; torch.topk leaves tie order
             // unspecified) [find_entropy_patch_start_ids]. HF supports only the threshold form.
  Relative,  // approximate monotonicity: p = 2 always starts, p >= 3 starts if H[p-1] - H[p-2] >
             // relative_threshold [monotonicity=True, patch_start_mask_from_entropy_with_monotonicity]
  Combined,  // both: p = 2 always starts, p = 3 never does (a quirk of the official mask, kept), p >= 4 starts
             // if H[p-1] - H[p-2] > relative_threshold and H[p-1] > threshold
             // [threshold_add, patch_start_mask_global_and_monotonicity]
};

enum class Alignment { NextByte, SeenOnly, HuggingFace };

constexpr double kReleasedThreshold = 1.335442066192627;  // HF BltConfig.patching_threshold (nats)

struct PatcherOptions {
  PatchingMode mode = PatchingMode::Entropy;
  EntropyRule rule = EntropyRule::Global;
  std::optional<double> threshold = kReleasedThreshold;  // global threshold (nats); Global + unset = top-k
  std::optional<double> relative_threshold;              // required by Relative and Combined
  int64_t patch_size = 4;                                // Static size; top-k's target ids per patch
  std::optional<int64_t> max_patch_length;               // longer patches are split into pieces of this size
  Alignment alignment = Alignment::NextByte;

  void validate() const;  // Error on NaN thresholds, patch_size < 1, max_patch_length < 1, missing thresholds
};

class Patcher {
 public:
  explicit Patcher(const PatcherOptions& options);  // validates
  const PatcherOptions& options() const { return options_; }
  bool needs_entropies() const { return options_.mode == PatchingMode::Entropy; }

  // ids: n >= 1 ids (Space needs them in [0, 260)). entropies: n values, required iff needs_entropies() (else
  // ignored, may be null); H[0] is never used, H[n-1] only when the next id is covered. Lengths are >= 1,
  // except the last one under HuggingFace alignment, which may be 0 (see above). Error on bad input.
  std::vector<int64_t> patch_lengths(const int64_t* ids, const float* entropies, int64_t n) const;

 private:
  std::vector<int64_t> patch_starts(const int64_t* ids, const float* entropies, int64_t n, int64_t covered) const;
  PatcherOptions options_;
};

// Splits every length above max_length into pieces of max_length and a remainder (official
// `split_large_numbers`; HF `process_patch_lengths` also drops zero lengths, done here if drop_zeros).
std::vector<int64_t> split_long_patches(const std::vector<int64_t>& lengths, int64_t max_length, bool drop_zeros);

// out[i] = -sum_v p log p (nats) of softmax(logits[i, :]); logits is (positions, vocab) row-major. Computed
// in double from the log-sum-exp, so large logits do not overflow. Error on NaN or +inf logits, or a row
// without any finite logit.
void entropy_from_logits(const float* logits, int64_t positions, int64_t vocab, float* out);

// Sum of lengths / number of non-empty patches (the paper's "bytes per patch"; position 0's patch and, under
// NextByte alignment, the next id are counted like any other). Error if there is no non-empty patch.
double mean_bytes_per_patch(const std::vector<int64_t>& lengths);

}  // namespace bytelm::blt
