// batch_decoder.h — one decoder for many rows, driven by `generate --batch`, serve's scheduler and bench.
// Rows join and leave between any two steps. Models with row decoding (model.h: every model here)
// keep every row at its own position: a joining row prefills its prompt in chunks inside the running batch's
// steps while the other rows go on decoding, a row whose window is full slides alone, and a prompt that starts
// with bytes another row's cache holds reuses them (prefix reuse). Without row decoding (row_positions
// off, or a model without it) the batch decodes at one shared position: a join restarts the batch (every row's text
// re-fed: the common length in one feed, the rest teacher-forced while shorter rows already sample), which can use
// static steps and CUDA graphs. Every row samples from its own generator, so its bytes do not depend on its neighbours
// (up to floating-point ties) and equal generate() alone with the same seed. A token model (the BPE baseline, given its
// tokenizer) is decoded the same way over token ids: prompts are encoded, rows sample tokens, and their bytes come out
// as generate_tokens() streams them.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "generate/sampling.h"

namespace bytelm {

class LanguageModelImpl;
class Tokenizer;

struct BatchDecoderOptions {
  int64_t slots = 4;                     // rows decoded together
  int64_t prefill_chunk = 64;            // row decoding: prompt bytes a row feeds per step
  bool row_positions = true;             // use the model's row decoding where it has one (else shared positions)
  bool prefix_reuse = true;              // row decoding: reuse cached prefixes of other rows
  std::string device = "cpu";            // where the model is
  std::string decode = "auto";           // shared positions: --decode (static steps, CUDA graphs), see static_decoder.h
  const Tokenizer* tokenizer = nullptr;  // required for a token model (model.reads_tokens()), else unused
  // Speculative decoding (speculative.h, batch_speculative.cpp): a draft byte model drafts up to draft_max
  // bytes per row and round (stopping below draft_p_min), and one call of the model checks every row's draft.
  // Byte models at row positions only; the draft must pass check_speculative().
  LanguageModelImpl* draft = nullptr;
  int64_t draft_max = 8;
  double draft_p_min = 0.5;
};

// What a row sampled in a step. A byte model: one byte, with the natural-log probabilities (softmax of the
// model's logits) of all 256 byte values in logp, valid until the next step(). A token model: the bytes the
// token completes (none while a byte escape is still open, or several), logp null.
struct Sampled {
  int64_t id = 0;
  std::string bytes;
  const float* logp = nullptr;
};

struct BatchDecoderStats {
  int64_t steps = 0;           // step() calls that ran the model
  int64_t restarts = 0;        // shared positions: batch restarts
  int64_t prefix_hits = 0;     // rows that started from another row's cached prefix
  int64_t prefix_bytes = 0;    // prompt ids (bytes, or a token model's tokens) those rows did not prefill
  int64_t prefill_bytes = 0;   // prompt (and slid window) ids fed
  int64_t phase_waits = 0;     // row positions, fixed patches: steps a row waited to decode in phase
  int64_t draft_rounds = 0;    // speculative: rounds (a row's check of its draft, or its first byte)
  int64_t drafted = 0;         // speculative: bytes the draft proposed
  int64_t draft_accepted = 0;  // speculative: drafted bytes the model accepted
};

class BatchDecoder {
 public:
  BatchDecoder(LanguageModelImpl& model, BatchDecoderOptions opt);
  ~BatchDecoder();
  BatchDecoder(const BatchDecoder&) = delete;
  BatchDecoder& operator=(const BatchDecoder&) = delete;

  bool row_positions() const;  // rows at their own positions (else one shared position)
  int64_t live() const;        // rows added and not removed
  bool full() const;
  // Adds a row; it feeds its prompt from the next step on. Throws Error when full, when the prompt does not
  // fit the context, or when a token model is asked for a repetition penalty. Returns the row's id (ids are
  // never reused). max_bytes: the most bytes the caller will take from the row (-1: no limit); speculative
  // rounds draft no further (as generate_speculative() does, so a row's bytes equal it alone).
  int64_t add(const std::string& prompt, const SamplingOptions& sampling, uint64_t seed, int64_t max_bytes = -1);
  // The row leaves; its slot is free at once (shared positions: its row is fed placeholders until the next
  // restart drops it).
  void remove(int64_t id);
  // Steps a new row would pause the running rows for: 0 with row positions; else the restart's teacher-forced
  // steps (the longest running text - the prompt's length).
  int64_t join_pause(size_t prompt_bytes) const;
  // One step of every row: rows prefilling feed up to prefill_chunk ids, decoding rows the id they sampled
  // last; every row whose ids are then all fed samples one (appended to its text). With a draft, a decoding
  // row does one speculative round instead and may sample several bytes (in order). Nothing happens without
  // rows. On an exception the decoder is reset (every row is gone).
  std::vector<Sampled> step();
  const BatchDecoderStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bytelm
