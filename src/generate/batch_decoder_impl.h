// batch_decoder_impl.h — the batch decoder's state (batch_decoder.h), shared by batch_decoder.cpp (rows at
// their own or one shared position) and batch_speculative.cpp (rounds with a draft model). Internal to
// src/generate/.
#pragma once
#include <torch/torch.h>

#include <algorithm>
#include <limits>

#include "generate/batch_decoder.h"
#include "generate/generate.h"
#include "generate/generate_tokens.h"
#include "generate/static_decoder.h"
#include "model/model.h"
#include "tokenizer/byte_escape.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace bytelm {

using Ids = std::vector<int32_t>;  // bytes (0-255), or a token model's token ids

struct DecoderRow {
  int64_t id = 0;
  int64_t slot = -1;  // row positions: the model's row
  Ids text;           // the ids in the row's window: prompt (or slid window) + generated
  size_t fed = 0;     // ids of text the model has been fed since the row's (re)start
  bool restart = true;
  bool live = true;
  SamplingOptions sampling;
  std::mt19937_64 rng;
  StreamUnescaper unescaper;  // token rows: token texts -> raw bytes
  // Speculative decoding: the draft's window (a suffix of text without its last id) and how much of it the
  // draft's row has fed since its restart; dfresh: no round yet; slid: the window slid since the last round;
  // bytes sampled and the caller's limit (-1: none).
  Ids dtext;
  size_t dfed = 0;
  bool drestart = true, dfresh = true, slid = false;
  int64_t produced = 0, max_bytes = -1;
};

inline size_t common_prefix(const Ids& a, const Ids& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

// The bytes the repetition penalty looks at (the last repetition_window of a byte row's text); empty when off.
inline std::string recent_bytes(const DecoderRow& r) {
  if (r.sampling.repetition_penalty == 1.0) return {};
  const size_t n = std::min(r.text.size(), size_t(std::max<int64_t>(0, r.sampling.repetition_window)));
  std::string out;
  for (size_t i = r.text.size() - n; i < r.text.size(); ++i) out.push_back(char(r.text[i]));
  return out;
}

// ids as a (rows, len) int64 tensor on the device.
inline torch::Tensor id_tensor(Ids& ids, int64_t rows, int64_t len, const torch::Device& device) {
  return torch::from_blob(ids.data(), {rows, len}, torch::kInt32).to(device, torch::kLong);
}

struct BatchDecoder::Impl {
  LanguageModelImpl& model;
  BatchDecoderOptions opt;
  torch::Device device;
  int64_t context;
  bool rows_mode;
  BatchDecoderStats stats;
  int64_t next_id = 0;
  std::vector<DecoderRow> rows;  // live rows (row positions), or the batch's rows in order (shared positions)
  torch::Tensor logp;            // (R, 256) host float: the last step's log-probabilities (byte models)
  // Row positions: what each slot's cache holds since its restart, and whether a live row owns it.
  std::vector<Ids> cached;
  std::vector<bool> taken;
  // Shared positions.
  bool need_restart = true;
  std::unique_ptr<StaticDecoder> steps;
  torch::Tensor logits;  // (B, V) for the next byte of every row of the batch

  Impl(LanguageModelImpl& m, BatchDecoderOptions o)
      : model(m), opt(std::move(o)), device(opt.device), context(m.config().context) {
    if (opt.slots < 1) throw Error("a batch needs at least 1 row");
    if (opt.prefill_chunk < 1) throw Error("the prefill chunk must be at least 1 byte");
    if (model.reads_tokens() && !opt.tokenizer) throw Error("a token model is decoded with its tokenizer");
    if (!model.reads_tokens()) opt.tokenizer = nullptr;
    rows_mode = opt.row_positions && model.has_row_decoding();
    if (rows_mode) {
      model.rows_begin(opt.slots);
      cached.assign(size_t(opt.slots), Ids());
      taken.assign(size_t(opt.slots), false);
    }
    if (opt.draft) begin_speculative();
  }

  // Speculative decoding (batch_speculative.cpp): checks the draft and starts its rows; one step of rounds.
  void begin_speculative();
  std::vector<Sampled> step_speculative();

  int64_t live() const {
    int64_t n = 0;
    for (const auto& r : rows) n += r.live;
    return n;
  }

  DecoderRow* find(int64_t id) {
    for (auto& r : rows)
      if (r.id == id && r.live) return &r;
    return nullptr;
  }

  // Row positions: a free slot for `prompt`, starting from the longest prefix some slot's cache holds.
  void place(DecoderRow& row) {
    int64_t source = -1, target = -1;
    size_t best = 0;
    const size_t usable = row.text.empty() ? 0 : row.text.size() - 1;  // at least one byte is fed
    for (int64_t s = 0; s < opt.slots && opt.prefix_reuse; ++s) {
      const size_t n = std::min(usable, common_prefix(cached[size_t(s)], row.text));
      if (n > best || (n == best && n > 0 && !taken[size_t(s)])) best = n, source = s;
    }
    if (source >= 0 && !taken[size_t(source)]) target = source;  // reuse in place
    for (int64_t s = 0; s < opt.slots && target < 0; ++s)
      if (!taken[size_t(s)]) target = s;
    row.slot = target;
    taken[size_t(target)] = true;
    const int64_t kept = source >= 0 ? model.rows_keep(source, target, int64_t(best)) : kRowNotStarted;
    if (kept > 0) {
      row.fed = size_t(kept);
      row.restart = false;
      cached[size_t(target)].assign(row.text.begin(), row.text.begin() + kept);
      ++stats.prefix_hits;
      stats.prefix_bytes += kept;
    } else {
      cached[size_t(target)].clear();
    }
  }

  // Samples the rows whose ids are all fed, from logits (R, V) whose row i is rows[index[i]].
  std::vector<Sampled> sample(const torch::Tensor& step_logits, const std::vector<size_t>& index) {
    torch::Tensor host;  // (R, 256) byte logits, or (R, V) token logits without the control ids
    if (opt.tokenizer) {
      host = step_logits.to(torch::kCPU, torch::kFloat32).contiguous().clone();
      host.narrow(1, 0, kTokenControlIds).fill_(-std::numeric_limits<float>::infinity());
    } else {
      host = step_logits.narrow(1, model.vocab_offset(), 256).to(torch::kCPU, torch::kFloat32).contiguous();
      logp = torch::log_softmax(host, 1).contiguous();
    }
    const int V = int(host.size(1));
    const float* l = host.data_ptr<float>();
    std::vector<Sampled> out;
    for (size_t i = 0; i < index.size(); ++i) {
      DecoderRow& r = rows[index[i]];
      if (!r.live || r.fed < r.text.size()) continue;
      const int id = sample_byte(l + size_t(V) * i, V, r.sampling, r.rng, recent_bytes(r));
      r.text.push_back(id);
      if (opt.tokenizer)
        out.push_back({r.id, r.unescaper.push(opt.tokenizer->token_text(id)), nullptr});
      else
        out.push_back({r.id, std::string(1, char(id)), logp.data_ptr<float>() + 256 * i});
      if (int64_t(r.text.size()) > context - 1) {  // the window is full: keep its last half, as generate() does
        r.text.erase(r.text.begin(), r.text.end() - window_kept(context));
        r.fed = 0;
        r.restart = true;
        if (!rows_mode) need_restart = true;
      }
    }
    return out;
  }

  // Rows at their own positions: a row prefills (its prompt or slid window, in chunks) until one byte is left
  // to feed per step, the byte it sampled last.
  static bool prefilling(const DecoderRow& r) { return r.restart || r.text.size() - r.fed > 1; }
  size_t feed_size(const DecoderRow& r) const {
    return std::min(r.text.size() - r.fed, size_t(prefilling(r) ? opt.prefill_chunk : 1));
  }
  bool ends_prefill(const DecoderRow& r) const { return prefilling(r) && feed_size(r) == r.text.size() - r.fed; }

  // Fixed patches (MEGABYTE): the position modulo P that most decoding rows reach in this step (without
  // any, that of most rows ending their prefill), or -1.
  int64_t decoding_phase(int64_t P) const {
    if (P <= 1) return -1;
    std::vector<int64_t> decoding(size_t(P), 0), ending(size_t(P), 0);
    for (const auto& r : rows) {
      if (!prefilling(r)) ++decoding[r.text.size() % size_t(P)];
      if (ends_prefill(r)) ++ending[r.text.size() % size_t(P)];
    }
    const auto& count = *std::max_element(decoding.begin(), decoding.end()) > 0 ? decoding : ending;
    const auto top = std::max_element(count.begin(), count.end());
    return *top > 0 ? int64_t(top - count.begin()) : -1;
  }

  std::vector<Sampled> step_rows() {
    // A row ending its prefill in this step waits (up to P - 1 steps) until it lands at the decoding rows'
    // position in a patch: rows in phase close their patches in the same step, so the global model steps
    // once per patch for all of them instead of nearly every step for a few (each call reads all its weights).
    const int64_t P = model.fixed_patch_size(), phase = decoding_phase(P);
    std::vector<RowFeed> feeds;
    std::vector<size_t> index;  // feeds[i] is rows[index[i]]
    for (size_t i = 0; i < rows.size(); ++i) {
      DecoderRow& r = rows[i];
      const size_t n = feed_size(r);
      if (ends_prefill(r) && phase >= 0 && int64_t(r.text.size() % size_t(P)) != phase) {
        ++stats.phase_waits;
        continue;
      }
      RowFeed f;
      f.slot = r.slot;
      f.restart = r.restart;
      f.ids.assign(r.text.begin() + int64_t(r.fed), r.text.begin() + int64_t(r.fed + n));
      if (prefilling(r)) stats.prefill_bytes += int64_t(n);
      if (r.restart) cached[size_t(r.slot)].clear();
      cached[size_t(r.slot)].insert(cached[size_t(r.slot)].end(), r.text.begin() + int64_t(r.fed),
                                    r.text.begin() + int64_t(r.fed + n));
      r.fed += n;
      r.restart = false;
      feeds.push_back(std::move(f));
      index.push_back(i);
    }
    if (feeds.empty()) return {};
    auto out = model.rows_feed(feeds);  // (R, V)
    ++stats.steps;
    return sample(out, index);
  }

  // Shared positions: a new batch from the live rows' texts.
  void restart() {
    rows.erase(std::remove_if(rows.begin(), rows.end(), [](const DecoderRow& r) { return !r.live; }), rows.end());
    need_restart = false;
    if (rows.empty()) return;
    const int64_t B = int64_t(rows.size());
    size_t common = rows[0].text.size();
    for (auto& r : rows) common = std::min(common, r.text.size());
    const StepPlan plan = plan_steps(opt.decode, model, device, B);
    steps = plan.static_steps ? std::make_unique<StaticDecoder>(model, plan.graphs) : nullptr;
    logits = model.start(B);  // (B, V)
    if (common > 0) {
      Ids flat;
      for (auto& r : rows) flat.insert(flat.end(), r.text.begin(), r.text.begin() + int64_t(common));
      logits = model.feed(id_tensor(flat, B, int64_t(common), device)).select(1, int64_t(common) - 1);
    }
    for (auto& r : rows) r.fed = common, r.restart = false;
    ++stats.restarts;
    stats.prefill_bytes += B * int64_t(common);
  }

  std::vector<Sampled> step_shared() {
    if (need_restart) {
      restart();
    } else {  // every row feeds its next id (a placeholder for rows that left)
      const int64_t B = int64_t(rows.size());
      Ids next(size_t(B), 0);
      for (int64_t i = 0; i < B; ++i) {
        DecoderRow& r = rows[size_t(i)];
        if (r.live && r.fed < r.text.size()) next[size_t(i)] = r.text[r.fed];
        if (r.live && r.text.size() - r.fed > 1) ++stats.prefill_bytes;
        ++r.fed;
      }
      auto ids = id_tensor(next, B, 1, device);  // (B, 1)
      logits = steps ? steps->step(ids.view({B})) : model.feed(ids).select(1, 0);
    }
    if (rows.empty()) return {};
    ++stats.steps;
    std::vector<size_t> index(rows.size());
    for (size_t i = 0; i < index.size(); ++i) index[i] = i;
    return sample(logits, index);
  }
};

}  // namespace bytelm
