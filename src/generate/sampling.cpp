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

int sample_byte(const float* logits, int V, const SamplingOptions& o, std::mt19937_64& rng, const std::string& recent) {
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
  if (o.temperature <= 0) return int(std::max_element(p.begin(), p.end()) - p.begin());
  std::vector<int> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return p[size_t(a)] > p[size_t(b)]; });
  size_t keep = o.top_k > 0 ? std::min<size_t>(size_t(V), size_t(o.top_k)) : size_t(V);
  std::vector<double> probs(keep);  // unnormalised, in descending order
  const double max_logit = p[size_t(order[0])];
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += probs[i] = std::exp((p[size_t(order[i])] - max_logit) / o.temperature);
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
  std::discrete_distribution<int> dist(probs.begin(), probs.end());
  return order[size_t(dist(rng))];
}

}  // namespace bytelm
