// test_rows.cpp — row decoding (every row at its own position): under a random schedule of restarts, chunks
// of 1-6 bytes and idle steps, each row's logits equal a fresh start(1)/feed() of its own bytes (within 1e-4),
// whatever its neighbours do; prefix reuse (rows_keep, copied or in place) equals feeding the kept bytes;
// the models without row decoding and bad feeds are refused in one line.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>

#include "common/test_device.h"
#include "model/blt.h"
#include "model/factory.h"
#include "model/model.h"
#include "util/error.h"

using namespace bytelm;
using bytelm::testing::test_device;

namespace {

std::vector<int64_t> random_bytes(size_t n, std::mt19937_64& rng) {
  std::vector<int64_t> v(n);
  for (auto& b : v) b = int64_t(rng() % 256);
  return v;
}

// Logits (m + 1, V) after 0 .. m bytes of `seq`, from a fresh batch-1 start.
torch::Tensor reference(LanguageModelImpl& model, const std::vector<int64_t>& seq) {
  auto first = model.start(1);  // (1, V)
  auto bytes = torch::tensor(seq, torch::kLong).view({1, -1}).to(test_device());
  return torch::cat({first, model.feed(bytes).select(0, 0)}, 0).to(torch::kCPU, torch::kFloat32);
}

// The tiny model of `name`; "blt_entropy": BLT cutting patches with its (random) entropy model, whose
// logits are scaled up so that entropies spread over nats and a threshold at their median cuts about every
// other byte without near-ties (the row and cached paths round differently).
LanguageModel row_model(const std::string& name, uint64_t seed) {
  if (name != "blt_entropy") return bytelm::testing::tiny_model(name, seed);
  auto model = bytelm::testing::tiny_model("blt", seed);
  auto& blt = dynamic_cast<BltImpl&>(*model);
  {
    torch::NoGradGuard no_grad;
    blt.model->patcher->lm_head->weight.mul_(40);
  }
  PatchingConfig patching = model->config().patching;
  patching.mode = "entropy";
  blt.set_patching(patching);
  std::mt19937_64 rng(seed);
  auto bytes = torch::tensor(random_bytes(200, rng), torch::kLong).view({1, -1}).to(test_device());
  blt.calibrate_threshold(bytes, 2.0);
  return model;
}

class Rows : public ::testing::TestWithParam<std::string> {};

TEST_P(Rows, EveryRowEqualsItsOwnDecodingUnderARandomSchedule) {
  c10::InferenceMode inference;
  auto model = row_model(GetParam(), 5);
  ASSERT_TRUE(model->has_row_decoding());
  const int64_t S = 3, L = model->config().context - 1;
  std::mt19937_64 rng(11);
  // Each slot decodes two sequences in turn (a restart in between); references first (start() clobbers rows).
  std::vector<std::vector<std::vector<int64_t>>> seqs(S);
  std::vector<std::vector<torch::Tensor>> refs(S);
  for (int64_t s = 0; s < S; ++s)
    for (int k = 0; k < 2; ++k) {
      seqs[s].push_back(random_bytes(size_t(L - 3 * s), rng));
      refs[s].push_back(reference(*model, seqs[s].back()));
    }
  model->rows_begin(S);
  std::vector<int> which(S, -1);  // the sequence a slot decodes (-1: not started)
  std::vector<size_t> fed(S, 0);  // its bytes fed
  int64_t checked = 0;
  for (int step = 0; step < 200; ++step) {
    std::vector<RowFeed> feeds;
    std::vector<std::pair<int64_t, size_t>> expect;  // slot, bytes fed after this call
    for (int64_t s = 0; s < S; ++s) {
      if (rng() % 4 == 0) continue;  // idle this step
      RowFeed f;
      f.slot = s;
      const bool done = which[s] >= 0 && fed[s] == seqs[s][size_t(which[s])].size();
      if (which[s] < 0 || (done && which[s] == 0)) {
        f.restart = true;
        which[s] += 1;
        fed[s] = 0;
      } else if (done) {
        continue;
      }
      const auto& seq = seqs[s][size_t(which[s])];
      const size_t n = std::min(seq.size() - fed[s], size_t(rng() % 7));
      if (n == 0 && !f.restart) continue;
      f.ids.assign(seq.begin() + int64_t(fed[s]), seq.begin() + int64_t(fed[s] + n));
      fed[s] += n;
      expect.emplace_back(s, fed[s]);
      feeds.push_back(std::move(f));
    }
    if (feeds.empty()) continue;
    const bool every = step % 3 == 0;  // every third call: the logits after each entry (speculative checks)
    auto out = model->rows_feed(feeds, every).to(torch::kCPU, torch::kFloat32);  // (R, V) or (R, n, V)
    ASSERT_EQ(out.size(0), int64_t(feeds.size()));
    for (size_t i = 0; i < expect.size(); ++i) {
      const auto [s, m] = expect[i];
      EXPECT_EQ(model->row_decoded(s), int64_t(m));
      const auto& ref = refs[s][size_t(which[s])];
      if (!every) {
        EXPECT_TRUE(torch::allclose(out[int64_t(i)], ref[int64_t(m)], 1e-4, 1e-4))
            << GetParam() << " slot " << s << " after " << m << " bytes, step " << step;
      } else {  // entry e: after the start id (e = 0 of a restart) or after byte first + e
        const int64_t entries = int64_t(feeds[i].ids.size()) + (feeds[i].restart ? 1 : 0);
        const int64_t first = int64_t(m) - entries + 1;
        for (int64_t e = 0; e < entries; ++e)
          EXPECT_TRUE(torch::allclose(out[int64_t(i)][e], ref[first + e], 1e-4, 1e-4))
              << GetParam() << " slot " << s << " entry " << e << " of the call at step " << step;
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 80);
  for (int64_t s = 0; s < S; ++s)  // every slot went through both of its sequences
    EXPECT_TRUE(which[s] == 1 && fed[s] == seqs[s][1].size()) << "slot " << s;
}

TEST_P(Rows, PrefixReuseEqualsFeedingTheKeptBytes) {
  c10::InferenceMode inference;
  auto model = row_model(GetParam(), 6);
  std::mt19937_64 rng(12);
  auto a = random_bytes(40, rng), b = random_bytes(20, rng);
  std::vector<int64_t> ab(a.begin(), a.begin() + 20);
  ab.insert(ab.end(), b.begin(), b.end());  // a's first 20 bytes, then other bytes
  auto ref = reference(*model, ab);
  model->rows_begin(3);
  model->rows_feed({RowFeed{0, true, a}});
  if (GetParam() == "hnet" || model->config().cross_patch > 0) {  // no prefix reuse (model.h)
    EXPECT_EQ(model->rows_keep(0, 1, 20), kRowNotStarted);
    return;
  }
  for (int64_t to : {1, 0}) {  // copied into another row, then in place (forgetting the rest of a)
    const int64_t kept = model->rows_keep(0, to, 20);
    ASSERT_GT(kept, 0);
    ASSERT_LE(kept, 20);
    const int64_t P = std::max<int64_t>(1, model->fixed_patch_size());
    EXPECT_GE(kept, 20 - P);
    std::vector<int64_t> rest(ab.begin() + kept, ab.end());
    auto out = model->rows_feed({RowFeed{to, false, rest}}).to(torch::kCPU, torch::kFloat32);
    EXPECT_TRUE(torch::allclose(out[0], ref[int64_t(ab.size())], 1e-4, 1e-4)) << GetParam() << " into row " << to;
  }
  EXPECT_EQ(model->rows_keep(2, 2, 5), kRowNotStarted);  // never started
}

TEST_P(Rows, BadFeedsAreRefused) {
  c10::InferenceMode inference;
  auto model = row_model(GetParam(), 7);
  model->rows_begin(2);
  EXPECT_THROW(model->rows_feed({RowFeed{0, false, {1}}}), Error);  // never started
  EXPECT_THROW(model->rows_feed({RowFeed{2, true, {}}}), Error);    // no such slot
  EXPECT_THROW(model->rows_feed({RowFeed{0, true, {}}, RowFeed{0, true, {}}}), Error);
  EXPECT_THROW(model->rows_feed({RowFeed{0, true, {300}}}), Error);
  std::vector<int64_t> too_long(size_t(model->config().context), 1);
  EXPECT_THROW(model->rows_feed({RowFeed{1, true, too_long}}), Error);
  EXPECT_EQ(model->row_decoded(1), kRowNotStarted);  // a refused call changes nothing
}

INSTANTIATE_TEST_SUITE_P(Models, Rows,
                         ::testing::Values("transformer", "megabyte", "entropy", "blt", "blt_entropy", "hnet",
                                           "megabyte_conv", "megabyte_xpatch", "megabyte_levels", "megabyte_all"));

}  // namespace
