// batch_speculative.cpp — speculative decoding inside the batch decoder (batch_decoder.h, speculative.h): every
// decoding row runs one round per step, all rows together. The draft drafts with its own rows at their own
// positions (one batched call per drafted byte, rows leaving as they stop), the model checks every row's block
// (its last byte and the draft) in one call with the logits after each id (rows_feed every_id), and each row
// rolls both caches back in place (rows_keep; a model that keeps less re-feeds the rest next step).
// Rows follow generate_speculative() exactly: the same windows, the same draws from the row's generator in
// the same order, so a row's bytes equal it alone with the same seed (greedy: plain decoding's bytes).
// While prefilling, a row feeds all but its last byte, which each round feeds first.
#include <torch/torch.h>

#include "generate/batch_decoder_impl.h"
#include "generate/speculative.h"

namespace bytelm {

namespace {

// One row's round: the block fed to the model (its last byte t0, then the drafted bytes), the draft's
// distributions and draws, and how many of the block the draft has fed.
struct Round {
  size_t row = 0;
  int64_t k_max = 0;
  Ids block;
  std::vector<std::vector<double>> q;
  std::vector<int> x;
  int64_t draft_fed = 0;
  bool drafting = true;
};

// The bytes the repetition penalty reads: the last repetition_window of text then extra (empty when off).
std::string penalty_window(const DecoderRow& r, const Ids& extra, size_t extra_from) {
  if (r.sampling.repetition_penalty == 1.0) return {};
  std::string all;
  for (int32_t b : r.text) all.push_back(char(b));
  for (size_t i = extra_from; i < extra.size(); ++i) all.push_back(char(extra[i]));
  const size_t n = std::min(all.size(), size_t(std::max<int64_t>(0, r.sampling.repetition_window)));
  return all.substr(all.size() - n);
}

// (R, [n,] V) logits -> (R, [n,] 256) host floats over the byte values.
torch::Tensor host_bytes(const torch::Tensor& logits, const LanguageModelImpl& m) {
  return logits.narrow(-1, m.vocab_offset(), 256).to(torch::kCPU, torch::kFloat32).contiguous();
}

// The draft's window for a round that may draft `room` bytes: the row's text without its last byte, its last
// half context when that does not leave room (generate_speculative()'s rule); the draft's row restarts.
void draft_window(DecoderRow& r, int64_t room, int64_t draft_context) {
  r.dtext.assign(r.text.begin(), r.text.end() - 1);
  if (int64_t(r.dtext.size()) + room + 1 > draft_context - 1)
    r.dtext.erase(r.dtext.begin(), r.dtext.end() - window_kept(draft_context));
  r.drestart = true;
  r.dfed = 0;
}

}  // namespace

void BatchDecoder::Impl::begin_speculative() {
  if (!rows_mode || opt.tokenizer || !opt.draft->has_row_decoding())
    throw Error("speculative batches need byte models decoding rows at their own positions");
  SpeculativeOptions spec;
  spec.draft_max = opt.draft_max;
  spec.draft_p_min = opt.draft_p_min;
  check_speculative_options(spec);
  check_speculative(model, *opt.draft, spec);
  opt.draft->rows_begin(opt.slots);
}

std::vector<Sampled> BatchDecoder::Impl::step_speculative() {
  LanguageModelImpl& draft = *opt.draft;
  const int64_t T = context, Td = draft.config().context;
  // 1. Rows whose model has fed all but their last byte do a round: its windows and most bytes drafted.
  std::vector<Round> rounds;
  for (size_t i = 0; i < rows.size(); ++i) {
    DecoderRow& r = rows[i];
    if (r.restart || r.text.empty() || r.fed + 1 != r.text.size()) continue;
    const int64_t left = r.max_bytes < 0 ? std::numeric_limits<int64_t>::max() : r.max_bytes - r.produced - 1;
    const int64_t k = std::min({opt.draft_max, T - 1 - int64_t(r.text.size()), left});
    if (r.dfresh) draft_window(r, opt.draft_max, Td);
    if (r.slid || int64_t(r.dtext.size()) + k + 1 > Td - 1) draft_window(r, k, Td);
    r.dfresh = r.slid = false;
    Round rd;
    rd.row = i;
    rd.k_max = std::max<int64_t>(0, std::min(k, Td - 2 - int64_t(r.dtext.size())));
    rd.block.push_back(r.text.back());
    rounds.push_back(std::move(rd));
  }
  // 2. The draft: one call per drafted byte; a row first catches up with its window, then feeds its last
  //    byte, then each byte it drew, until k_max or its confidence falls below draft_p_min.
  for (int64_t i = 0;; ++i) {
    std::vector<RowFeed> feeds;
    std::vector<size_t> who;
    for (size_t j = 0; j < rounds.size(); ++j) {
      Round& rd = rounds[j];
      if (!rd.drafting || i >= rd.k_max) {
        rd.drafting = false;
        continue;
      }
      DecoderRow& r = rows[rd.row];
      RowFeed f;
      f.slot = r.slot;
      if (i == 0) {
        f.restart = r.drestart;
        f.ids.assign(r.dtext.begin() + int64_t(r.dfed), r.dtext.end());
        r.drestart = false;
        r.dfed = r.dtext.size();
      }
      f.ids.push_back(rd.block.back());
      ++rd.draft_fed;
      feeds.push_back(std::move(f));
      who.push_back(j);
    }
    if (feeds.empty()) break;
    auto host = host_bytes(draft.rows_feed(feeds), draft);  // (R, 256)
    for (size_t m = 0; m < who.size(); ++m) {
      Round& rd = rounds[who[m]];
      DecoderRow& r = rows[rd.row];
      const float* l = host[int64_t(m)].data_ptr<float>();
      const std::string recent = penalty_window(r, rd.block, 1);
      if (top_probability(l, 256, r.sampling, recent) < opt.draft_p_min) {
        rd.drafting = false;
        continue;
      }
      rd.q.push_back(sampling_distribution(l, 256, r.sampling, recent));
      rd.x.push_back(draw_from(rd.q.back(), r.rng));
      rd.block.push_back(rd.x.back());
    }
  }
  // 3. The model: every round's block and every prefilling row's next chunk (up to its last byte), in one call.
  std::vector<RowFeed> feeds;
  std::vector<size_t> index;      // feeds[m] is rows[index[m]]
  std::vector<int64_t> round_of;  // its round, or -1
  for (size_t j = 0; j < rounds.size(); ++j) {
    DecoderRow& r = rows[rounds[j].row];
    RowFeed f;
    f.slot = r.slot;
    f.ids.assign(rounds[j].block.begin(), rounds[j].block.end());
    feeds.push_back(std::move(f));
    index.push_back(rounds[j].row);
    round_of.push_back(int64_t(j));
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    DecoderRow& r = rows[i];
    const size_t upto = r.text.empty() ? 0 : r.text.size() - 1;
    if (!r.restart && r.fed >= upto) continue;
    const size_t n = std::min(upto - r.fed, size_t(opt.prefill_chunk));
    RowFeed f;
    f.slot = r.slot;
    f.restart = r.restart;
    f.ids.assign(r.text.begin() + int64_t(r.fed), r.text.begin() + int64_t(r.fed + n));
    stats.prefill_bytes += int64_t(n);
    r.fed += n;
    r.restart = false;
    feeds.push_back(std::move(f));
    index.push_back(i);
    round_of.push_back(-1);
  }
  if (feeds.empty()) return {};
  auto host = host_bytes(model.rows_feed(feeds, /*every_id=*/true), model);  // (R, n, 256)
  logp = torch::log_softmax(host, 2).contiguous();  // each emitted byte's log-probabilities, until the next step
  const int64_t n = host.size(1);
  ++stats.steps;
  // 4. Each round's verdict; a row with an empty text samples its first byte from the start id's logits.
  std::vector<Sampled> out;
  auto emit = [&](DecoderRow& r, int b, size_t m, int64_t i) {  // byte b read from entry i of feed m
    r.text.push_back(b);
    ++r.produced;
    out.push_back({r.id, std::string(1, char(b)), logp.data_ptr<float>() + (int64_t(m) * n + i) * 256});
  };
  for (size_t m = 0; m < feeds.size(); ++m) {
    DecoderRow& r = rows[index[m]];
    if (round_of[m] < 0) {
      if (!r.text.empty()) continue;  // prefilling
      ++stats.draft_rounds;
      emit(r, draw_from(sampling_distribution(host[int64_t(m)][0].data_ptr<float>(), 256, r.sampling, ""), r.rng), m,
           0);
      continue;
    }
    Round& rd = rounds[size_t(round_of[m])];
    const int64_t k = int64_t(rd.x.size());
    std::vector<std::vector<double>> p;
    for (int64_t i = 0; i <= k; ++i)
      p.push_back(sampling_distribution(host[int64_t(m)][i].data_ptr<float>(), 256, r.sampling,
                                        penalty_window(r, Ids(rd.block.begin(), rd.block.begin() + 1 + i), 1)));
    const Verdict v = verify_draft(p, rd.q, rd.x, r.rng);
    ++stats.draft_rounds;
    stats.drafted += k;
    stats.draft_accepted += v.accepted;
    // The model keeps the bytes before t0, t0 and the accepted ones; the draft gets to the same bytes.
    const int64_t keep = int64_t(r.text.size()) + v.accepted;
    r.fed = size_t(keep);
    if (v.accepted < k) {
      const int64_t kept = model.rows_keep(r.slot, r.slot, keep);
      r.restart = kept == kRowNotStarted;
      r.fed = r.restart ? 0 : size_t(kept);
    }
    const int64_t dkeep = v.accepted + 1, dhave = int64_t(r.dtext.size());
    if (rd.draft_fed > 0) r.dfed = size_t(dhave + std::min(rd.draft_fed, dkeep));  // else: not fed this round
    if (rd.draft_fed > dkeep) {
      const int64_t kept = draft.rows_keep(r.slot, r.slot, dhave + dkeep);
      r.drestart = kept == kRowNotStarted;
      r.dfed = r.drestart ? 0 : size_t(kept);
    }
    r.dtext.insert(r.dtext.end(), rd.block.begin(), rd.block.begin() + dkeep);
    for (int64_t i = 0; i < v.accepted; ++i) emit(r, rd.x[size_t(i)], m, i);
    emit(r, v.next, m, v.accepted);
  }
  // 5. Windows: past the context a row keeps its last half and prefills it again (both models).
  for (auto& r : rows) {
    if (int64_t(r.text.size()) > T - 1) {
      r.text.erase(r.text.begin(), r.text.end() - window_kept(T));
      r.fed = 0;
      r.restart = r.slid = true;
    }
    cached[size_t(r.slot)].assign(r.text.begin(), r.text.begin() + int64_t(std::min(r.fed, r.text.size())));
  }
  return out;
}

}  // namespace bytelm
