// speculative.h — speculative decoding at batch 1: a cheap draft model proposes up to k bytes, the target
// model checks them all in one feed() of k+1 bytes, and the output is distributed exactly as the target's
// own sampling (greedy: equal to generate() byte for byte, up to floating-point near-ties).
// Algorithm (Leviathan et al. 2023, Chen et al. 2023): accept drafted byte x_i with probability
// min(1, p_i(x_i) / q_i(x_i)); at the first rejection emit a byte drawn from norm(max(0, p_i - q_i)); when
// all k are accepted emit a bonus byte from p_{k+1}. p and q are the final sampling distributions (after
// the repetition penalty, temperature, top-k, min-p and top-p: sampling.h). Both models roll their caches
// back with rewind() (model.h).
#pragma once
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "generate/generate.h"

namespace bytelm {

class LanguageModelImpl;

struct SpeculativeOptions {
  int64_t draft_max = 8;     // most bytes drafted per round (k)
  double draft_p_min = 0.5;  // stop drafting when the draft's top probability falls below this (0 = never)
};

// What a run did: rounds (target feeds), bytes drafted and accepted, bytes emitted.
struct SpeculativeStats {
  int64_t rounds = 0, drafted = 0, accepted = 0, generated = 0;
  double acceptance() const { return drafted > 0 ? double(accepted) / double(drafted) : 0.0; }
  double bytes_per_round() const { return rounds > 0 ? double(generated) / double(rounds) : 0.0; }
};

// The accept/resample rule of one round. p: k+1 target distributions (p[i] for the position of x[i], p[k]
// the bonus position), q: the k draft distributions x was drawn from. Returns the number n of drafted bytes
// accepted and the byte emitted after them (the correction drawn from norm(max(0, p[n] - q[n])) when n < k,
// else the bonus drawn from p[k]).
struct Verdict {
  int64_t accepted = 0;
  int next = 0;
};
Verdict verify_draft(const std::vector<std::vector<double>>& p, const std::vector<std::vector<double>>& q,
                     const std::vector<int>& x, std::mt19937_64& rng);

// A draw from the distribution d (probabilities summing to 1) by inverting its CDF with one uniform of rng.
int draw_from(const std::vector<double>& d, std::mt19937_64& rng);

// norm(max(0, p - q)): where a rejection resamples from (p itself when p <= q everywhere, i.e. p == q).
std::vector<double> residual_distribution(const std::vector<double>& p, const std::vector<double>& q);

// Throws Error naming the problem unless `draft` can draft for `target` (both byte models with rewind()).
void check_speculative(const LanguageModelImpl& target, const LanguageModelImpl& draft, const SpeculativeOptions& s);
void check_speculative_options(const SpeculativeOptions& s);  // --draft-max, --draft-p-min in range

// generate() with a draft: the same options (opt.no_cache and opt.decode are not used: both models decode
// with feed() and rewind()), bytes streamed to `sink`; fills `stats` when given (also when the sink throws).
std::string generate_speculative(LanguageModelImpl& target, LanguageModelImpl& draft, const GenerateOptions& opt,
                                 const SpeculativeOptions& spec, const std::function<void(uint8_t)>& sink,
                                 SpeculativeStats* stats = nullptr);

}  // namespace bytelm
