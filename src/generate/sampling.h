// sampling.h — choosing the next byte from a model's logits: repetition penalty, temperature, top-k,
// min-p, top-p (nucleus). Works on host floats; torch-free.
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace bytelm {

struct SamplingOptions {
  double temperature = 1.0;         // 0 = greedy
  int64_t top_k = 0;                // 0 = off
  double top_p = 1.0;               // 1 = off
  double min_p = 0;                 // keep bytes with p >= min_p * p_max (0 = off)
  double repetition_penalty = 1.0;  // > 1 discourages bytes seen in the last repetition_window bytes (1 = off)
  int64_t repetition_window = 64;   // bytes of context (prompt and output) the penalty looks at
};

// Throws Error naming the flag of the first option out of range.
void check_sampling(const SamplingOptions& o);

// Picks one of `V` values from `logits`: the repetition penalty on the values in the last
// repetition_window bytes of `recent` (CTRL's rule: positive logits divided by the penalty, negative ones
// multiplied), then the argmax (temperature 0), or a draw from the softmax at the temperature restricted by
// top-k, then min-p, then top-p, in that order (llama.cpp's order of the same filters).
int sample_byte(const float* logits, int V, const SamplingOptions& o, std::mt19937_64& rng, const std::string& recent);

// The distribution sample_byte draws from, as V probabilities summing to 1 (0 for filtered values): one-hot
// on the argmax at temperature 0. Speculative decoding accepts and resamples with these.
std::vector<double> sampling_distribution(const float* logits, int V, const SamplingOptions& o,
                                          const std::string& recent);

// The largest probability of sampling_distribution(), or at temperature 0 of the plain softmax (temperature
// 1, no filters) after the repetition penalty: how sure a draft model is of its next byte.
double top_probability(const float* logits, int V, const SamplingOptions& o, const std::string& recent);

}  // namespace bytelm
