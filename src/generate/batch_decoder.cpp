// batch_decoder.cpp — many rows decoded together, at their own positions or at one shared position
// (see batch_decoder.h).
#include "generate/batch_decoder.h"

#include "generate/batch_decoder_impl.h"

namespace bytelm {

BatchDecoder::BatchDecoder(LanguageModelImpl& model, BatchDecoderOptions opt)
    : impl_(std::make_unique<Impl>(model, std::move(opt))) {}
BatchDecoder::~BatchDecoder() = default;

bool BatchDecoder::row_positions() const { return impl_->rows_mode; }
int64_t BatchDecoder::live() const { return impl_->live(); }
bool BatchDecoder::full() const { return live() >= impl_->opt.slots; }
const BatchDecoderStats& BatchDecoder::stats() const { return impl_->stats; }

int64_t BatchDecoder::add(const std::string& prompt, const SamplingOptions& sampling, uint64_t seed,
                          int64_t max_bytes) {
  Impl& d = *impl_;
  if (full()) throw Error("the batch is full (" + std::to_string(d.opt.slots) + " rows)");
  DecoderRow row;
  if (d.opt.tokenizer) {
    if (sampling.repetition_penalty != 1.0)
      throw Error("--repetition-penalty works on byte models only (the BPE baseline samples tokens)");
    row.text = d.opt.tokenizer->encode(prompt);
  } else {
    row.text.assign(prompt.begin(), prompt.end());
    for (auto& b : row.text) b = int32_t(uint8_t(b));  // bytes, not signed chars
  }
  const std::string unit = d.opt.tokenizer ? " tokens" : " bytes";
  if (int64_t(row.text.size()) >= d.context)
    throw Error("prompt of " + std::to_string(row.text.size()) + unit + " does not fit the context of " +
                std::to_string(d.context) + unit + " (at most " + std::to_string(d.context - 1) + ")");
  row.id = d.next_id++;
  row.max_bytes = max_bytes;
  row.sampling = sampling;
  row.rng.seed(seed);
  if (d.rows_mode)
    d.place(row);
  else
    d.need_restart = true;
  d.rows.push_back(std::move(row));
  return d.rows.back().id;
}

void BatchDecoder::remove(int64_t id) {
  Impl& d = *impl_;
  DecoderRow* r = d.find(id);
  if (!r) return;
  r->live = false;
  if (d.rows_mode) {
    d.taken[size_t(r->slot)] = false;  // its cache stays, for prefix reuse, until the slot is taken again
    d.rows.erase(d.rows.begin() + (r - d.rows.data()));
  } else if (d.live() == 0) {
    d.rows.clear();
    d.need_restart = true;
  }
}

int64_t BatchDecoder::join_pause(size_t prompt_bytes) const {
  if (impl_->rows_mode) return 0;
  size_t longest = 0;
  for (const auto& r : impl_->rows)
    if (r.live) longest = std::max(longest, r.text.size());
  return int64_t(longest) - int64_t(prompt_bytes);
}

std::vector<Sampled> BatchDecoder::step() {
  Impl& d = *impl_;
  if (d.live() == 0) return {};
  try {
    if (d.opt.draft) return d.step_speculative();
    return d.rows_mode ? d.step_rows() : d.step_shared();
  } catch (...) {  // e.g. out of memory: forget every row, keep the decoder usable
    d.rows.clear();
    d.need_restart = true;
    if (d.rows_mode) {
      std::fill(d.taken.begin(), d.taken.end(), false);
      for (auto& c : d.cached) c.clear();
    }
    throw;
  }
}

}  // namespace bytelm
