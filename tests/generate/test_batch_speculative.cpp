// test_batch_speculative.cpp — speculative decoding inside the batch decoder: with requests joining at random
// steps, cancelled early and sliding past the context, every row's bytes equal generate_speculative() alone
// with the same seed and limit (greedy and sampled, identical, related and unrelated drafts, Transformer,
// MEGABYTE and BLT targets), greedy rows equal plain generate(); rounds are counted; bad drafts are refused.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <random>
#include <set>

#include "common/test_device.h"
#include "generate/batch_decoder.h"
#include "generate/generate.h"
#include "generate/speculative.h"
#include "model/model.h"
#include "util/error.h"

using namespace bytelm;
using bytelm::testing::test_device;
using bytelm::testing::tiny_model;

namespace {

struct Request {
  std::string prompt;
  uint64_t seed = 0;
  int64_t max_bytes = 0;
  int64_t join_step = 0;
  int64_t cancel_after = -1;  // leaves after this many bytes (-1: runs to max_bytes)
};

SamplingOptions sampling(double temperature) {
  SamplingOptions s;
  s.temperature = temperature;
  s.top_k = 40;
  return s;
}

GenerateOptions alone_options(const Request& r, double temperature) {
  GenerateOptions o;
  static_cast<SamplingOptions&>(o) = sampling(temperature);
  o.device = test_device();
  o.precision = "fp32";
  o.prompt = r.prompt;
  o.seed = r.seed;
  o.max_bytes = r.max_bytes;
  return o;
}

std::vector<Request> requests(int64_t context) {
  std::mt19937_64 rng(31);
  const std::vector<std::string> prompts = {"", "The cat", "It is a truth universally acknowledged", "x",
                                            "\x01\xff binary \x80"};
  std::vector<Request> reqs;
  for (size_t i = 0; i < 8; ++i) {
    Request r;
    r.prompt = prompts[i % prompts.size()];
    r.seed = 200 + i;
    r.max_bytes = 6 + int64_t(rng() % 30);
    if (i == 2) r.max_bytes = context + 25;  // slides its window past the context
    r.join_step = int64_t(rng() % 20);
    if (i % 4 == 3) r.cancel_after = 1 + int64_t(rng() % 4);
    reqs.push_back(r);
  }
  std::stable_sort(reqs.begin(), reqs.end(),
                   [](const Request& a, const Request& b) { return a.join_step < b.join_step; });
  return reqs;
}

// Runs the requests through one speculative decoder; returns each one's bytes.
std::vector<std::string> together(LanguageModelImpl& target, LanguageModelImpl& draft, const std::vector<Request>& reqs,
                                  double temperature, int64_t k, double p_min, BatchDecoderStats* stats) {
  c10::InferenceMode inference;
  BatchDecoderOptions opt;
  opt.slots = 3;
  opt.prefill_chunk = 7;
  opt.device = test_device();
  opt.draft = &draft;
  opt.draft_max = k;
  opt.draft_p_min = p_min;
  BatchDecoder dec(target, opt);
  std::vector<std::string> out(reqs.size());
  std::map<int64_t, size_t> by_id;
  size_t next = 0, finished = 0;
  for (int64_t step = 0; finished < reqs.size() && step < 5000; ++step) {
    while (next < reqs.size() && reqs[next].join_step <= step && !dec.full()) {
      by_id[dec.add(reqs[next].prompt, sampling(temperature), reqs[next].seed, reqs[next].max_bytes)] = next;
      ++next;
    }
    std::set<int64_t> gone;
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

}  // namespace

TEST(BatchSpeculative, EveryRowEqualsSpeculativeDecodingAlone) {
  for (const std::string target_name : {"transformer", "megabyte", "blt"}) {
    auto target = tiny_model(target_name, 5);
    auto same = tiny_model(target_name, 5);  // the target's weights with caches of its own
    auto other = tiny_model("entropy", 8);   // an unrelated small byte model
    const auto reqs = requests(target->config().context);
    for (auto* draft : {same.get(), other.get()})
      for (double temperature : {0.0, 1.0}) {
        const int64_t k = temperature == 0 ? 4 : 3;
        const double p_min = draft == other.get() && temperature > 0 ? 0.03 : 0.0;  // random weights: small top p
        BatchDecoderStats stats;
        const auto got = together(*target, *draft, reqs, temperature, k, p_min, &stats);
        for (size_t i = 0; i < reqs.size(); ++i) {
          SpeculativeOptions s;
          s.draft_max = k;
          s.draft_p_min = p_min;
          const auto o = alone_options(reqs[i], temperature);
          std::string want = generate_speculative(*target, *draft, o, s, [](uint8_t) {});
          if (temperature == 0)
            EXPECT_EQ(want, generate(*target, o, [](uint8_t) {})) << target_name << " request " << i;
          if (reqs[i].cancel_after >= 0) want = want.substr(0, size_t(reqs[i].cancel_after));
          EXPECT_EQ(got[i], want) << target_name << " request " << i << " temperature " << temperature
                                  << (draft == same.get() ? " identical draft" : " unrelated draft");
        }
        EXPECT_GT(stats.draft_rounds, 0);
        EXPECT_GT(stats.drafted, 0) << target_name;
        if (draft == same.get() && temperature == 0) EXPECT_EQ(stats.draft_accepted, stats.drafted) << target_name;
        if (draft == other.get()) EXPECT_LT(stats.draft_accepted, stats.drafted) << target_name;
      }
  }
}

TEST(BatchSpeculative, RefusesWhatCannotDraft) {
  c10::InferenceMode inference;
  auto target = tiny_model("transformer", 5);
  auto hnet = tiny_model("hnet", 5);
  BatchDecoderOptions opt;
  opt.device = test_device();
  opt.draft = hnet.get();  // cannot roll its caches back
  EXPECT_THROW(BatchDecoder(*target, opt), Error);
  opt.draft = target.get();
  opt.draft_max = 0;
  EXPECT_THROW(BatchDecoder(*target, opt), Error);
  opt.draft_max = 4;
  opt.row_positions = false;
  EXPECT_THROW(BatchDecoder(*target, opt), Error);
}
