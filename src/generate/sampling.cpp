// sampling.cpp — see sampling.h.
#include "generate/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "util/error.h"

namespace bytelm {

void check_sampling(const SamplingOptions& o) {
  if (!(o.temperature >= 0)) throw Error("--temperature must be >= 0");
  if (o.top_k < 0) throw Error("--top-k must be >= 0");
  if (!(o.top_p > 0 && o.top_p <= 1)) throw Error("--top-p must be in (0, 1]");
  if (!(o.min_p >= 0 && o.min_p < 1)) throw Error("--min-p must be in [0, 1)");
  if (!(o.repetition_penalty > 0)) throw Error("--repetition-penalty must be > 0 (1 = off)");
  if (o.repetition_window < 1) throw Error("--repetition-window must be >= 1");
}

namespace {

// The logits after the repetition penalty (CTRL's rule on the bytes of the last repetition_window of `recent`).
std::vector<float> penalised(const float* logits, int V, const SamplingOptions& o, const std::string& recent) {
  std::vector<float> p(logits, logits + V);
  if (o.repetition_penalty != 1.0) {
    std::vector<bool> seen(size_t(V), false);
    const size_t window = size_t(o.repetition_window);
    for (size_t i = recent.size() > window ? recent.size() - window : 0; i < recent.size(); ++i)
      if (uint8_t(recent[i]) < V) seen[uint8_t(recent[i])] = true;
    for (int v = 0; v < V; ++v) {
      float& l = p[size_t(v)];
      if (seen[size_t(v)]) l = l > 0 ? float(l / o.repetition_penalty) : float(l * o.repetition_penalty);
    }
  }
  return p;
}

// What survives top-k, min-p and top-p at temperature > 0: values in descending order of penalised logit
// (`order`) and their unnormalised probabilities (`probs`, as many as survive).
struct Kept {
  std::vector<int> order;
  std::vector<double> probs;
};

Kept filtered(const std::vector<float>& p, int V, const SamplingOptions& o) {
  Kept k;
  k.order.resize(static_cast<size_t>(V));
  std::iota(k.order.begin(), k.order.end(), 0);
  std::sort(k.order.begin(), k.order.end(), [&](int a, int b) { return p[size_t(a)] > p[size_t(b)]; });
  size_t keep = o.top_k > 0 ? std::min<size_t>(size_t(V), size_t(o.top_k)) : size_t(V);
  std::vector<double>& probs = k.probs;  // unnormalised, in descending order
  probs.resize(keep);
  const double max_logit = p[size_t(k.order[0])];
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += probs[i] = std::exp((p[size_t(k.order[i])] - max_logit) / o.temperature);
  if (o.min_p > 0) {
    size_t cut = 1;
    while (cut < keep && probs[cut] >= o.min_p * probs[0]) ++cut;
    for (size_t i = cut; i < keep; ++i) sum -= probs[i];
    keep = cut;
  }
  if (o.top_p < 1.0) {
    double acc = 0;
    for (size_t i = 0; i < keep; ++i) {
      acc += probs[i] / sum;
      if (acc >= o.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  probs.resize(keep);
  return k;
}

}  // namespace

int sample_byte(const float* logits, int V, const SamplingOptions& o, std::mt19937_64& rng, const std::string& recent) {
  const std::vector<float> p = penalised(logits, V, o, recent);
  if (o.temperature <= 0) return int(std::max_element(p.begin(), p.end()) - p.begin());
  const Kept k = filtered(p, V, o);
  std::discrete_distribution<int> dist(k.probs.begin(), k.probs.end());
  return k.order[size_t(dist(rng))];
}

std::vector<double> sampling_distribution(const float* logits, int V, const SamplingOptions& o,
                                          const std::string& recent) {
  const std::vector<float> p = penalised(logits, V, o, recent);
  std::vector<double> dist(size_t(V), 0.0);
  if (o.temperature <= 0) {
    dist[size_t(std::max_element(p.begin(), p.end()) - p.begin())] = 1.0;
    return dist;
  }
  const Kept k = filtered(p, V, o);
  const double sum = std::accumulate(k.probs.begin(), k.probs.end(), 0.0);
  for (size_t i = 0; i < k.probs.size(); ++i) dist[size_t(k.order[i])] = k.probs[i] / sum;
  return dist;
}

double top_probability(const float* logits, int V, const SamplingOptions& o, const std::string& recent) {
  SamplingOptions soft = o;
  if (soft.temperature <= 0) {  // greedy: the plain softmax's confidence
    soft.temperature = 1;
    soft.top_k = 0;
    soft.top_p = 1;
    soft.min_p = 0;
  }
  const std::vector<double> d = sampling_distribution(logits, V, soft, recent);
  return *std::max_element(d.begin(), d.end());
}

}  // namespace bytelm
