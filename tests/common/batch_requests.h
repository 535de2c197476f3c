// batch_requests.h — requests for the batch decoder's tests: prompts joining at random steps, some cancelled
// early, one sliding its window past the context; and a driver that runs them through one BatchDecoder.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/test_device.h"
#include "generate/batch_decoder.h"

namespace bytelm::testing {

struct Request {
  std::string prompt;
  uint64_t seed = 0;
  int64_t max_bytes = 0;
  int64_t join_step = 0;      // the step before which it is added
  int64_t cancel_after = -1;  // leaves after this many bytes (-1: runs to max_bytes)
};

inline SamplingOptions sampling(double temperature) {
  SamplingOptions s;
  s.temperature = temperature;
  s.top_k = 40;
  return s;
}

// Nine requests in join order: short and binary prompts, 5-34 bytes each, request 2 running past the context,
// every fourth cancelled after 1-4 bytes, joining within the first 40 steps.
inline std::vector<Request> random_requests(int64_t context, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Request> reqs;
  const std::vector<std::string> prompts = {"",
                                            "The cat",
                                            "It is a truth universally acknowledged",
                                            "The cat sat on the mat",
                                            "\x01\xff binary \x80",
                                            "The cat sat"};
  for (size_t i = 0; i < 9; ++i) {
    Request r;
    r.prompt = prompts[i % prompts.size()];
    r.seed = 100 + i;
    r.max_bytes = 5 + int64_t(rng() % 30);
    if (i == 2) r.max_bytes = context + 20;  // slides its window past the context
    r.join_step = int64_t(rng() % 40);
    if (i % 4 == 3) r.cancel_after = 1 + int64_t(rng() % 4);
    reqs.push_back(r);
  }
  std::stable_sort(reqs.begin(), reqs.end(),
                   [](const Request& a, const Request& b) { return a.join_step < b.join_step; });
  return reqs;
}

// Runs the requests through one decoder built from `opt` (on the test device); returns each one's bytes, cut at
// its limit. Rows are added with their max_bytes (speculative rounds draft no further).
inline std::vector<std::string> together(LanguageModelImpl& model, const std::vector<Request>& reqs, double temperature,
                                         BatchDecoderOptions opt, BatchDecoderStats* stats = nullptr) {
  c10::InferenceMode inference;
  opt.device = test_device();
  BatchDecoder dec(model, opt);
  std::vector<std::string> out(reqs.size());
  std::map<int64_t, size_t> by_id;
  size_t next = 0, finished = 0;
  for (int64_t step = 0; finished < reqs.size() && step <= 5000; ++step) {
    while (next < reqs.size() && reqs[next].join_step <= step && !dec.full()) {
      by_id[dec.add(reqs[next].prompt, sampling(temperature), reqs[next].seed, reqs[next].max_bytes)] = next;
      ++next;
    }
    std::set<int64_t> gone;  // rows removed in this step (a step may give a row several pieces)
    for (const auto& s : dec.step()) {
      if (gone.count(s.id)) continue;
      const size_t i = by_id.at(s.id);
      const int64_t limit = reqs[i].cancel_after >= 0 ? reqs[i].cancel_after : reqs[i].max_bytes;
      out[i] += s.bytes;
      if (int64_t(out[i].size()) >= limit) {
        out[i].resize(size_t(limit));
        dec.remove(s.id);
        gone.insert(s.id);
        ++finished;
      }
    }
  }
  EXPECT_EQ(finished, reqs.size()) << "the decoder does not finish";
  if (stats) *stats = dec.stats();
  return out;
}

}  // namespace bytelm::testing
