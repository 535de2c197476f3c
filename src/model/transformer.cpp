// transformer.cpp — byte-level Transformer (see transformer.h).
#include "model/transformer.h"

#include "util/error.h"

namespace bytelm {

TransformerImpl::TransformerImpl(const ModelConfig& cfg, int64_t vocab, const char* unit)
    : LanguageModelImpl(cfg), vocab_(vocab), unit_(unit) {
  embed = register_module("embed", torch::nn::Embedding(vocab + 1, cfg.global.width));
  model = register_module("model", Stack(cfg.global, cfg.norm_eps));
  head = register_module("head", torch::nn::Linear(torch::nn::LinearOptions(cfg.global.width, vocab).bias(false)));
  init_weights(*this, cfg.init_std, cfg.global.layers);
}

torch::Tensor TransformerImpl::forward(const torch::Tensor& ids) {
  const int64_t B = ids.size(0), T = ids.size(1);
  auto start_id = torch::full({B, 1}, vocab_, ids.options());
  auto in = torch::cat({start_id, ids.narrow(1, 0, T - 1)}, 1);  // (B, T)
  return head(model(embed(in)));                                 // (B, T, V)
}

torch::Tensor TransformerImpl::start(int64_t batch) {
  caches_ = model->make_caches(batch, cfg_.context, std::move(caches_));
  decoded_ = 0;
  const auto dev = head->weight.device();
  auto ids = torch::full({batch, 1}, vocab_, torch::TensorOptions().dtype(torch::kLong).device(dev));
  if (!reusable(in_ids_, {batch, 1}, ids.options())) {
    in_ids_ = torch::zeros({batch, 1}, ids.options());
    pos_ = torch::zeros({}, ids.options());
    static_logits_ = torch::zeros({batch, vocab_}, torch::TensorOptions().device(dev));
  }
  return project(head, model(embed(ids), 0, &caches_)).select(1, 0);  // (B, V)
}

torch::Tensor TransformerImpl::feed(const torch::Tensor& ids) {
  const int64_t n = ids.size(1);
  if (decoded_ + n > cfg_.context - 1)
    throw Error("decoding past the context of " + std::to_string(cfg_.context) + " " + unit_);
  // Id i of this call sits at input position decoded_ + 1 + i (position 0 is the start id).
  auto out = project(head, model(embed(ids), decoded_ + 1, &caches_));
  decoded_ += n;
  return out;  // (B, n, V)
}

void TransformerImpl::rewind(int64_t ids) {
  check_rewind(ids);
  decoded_ -= ids;
  for (auto& c : caches_) c.len = decoded_ + 1;  // the start id, then the ids kept
}

int64_t TransformerImpl::static_prepare(const torch::Tensor& bytes) {
  if (decoded_ + 1 > cfg_.context - 1)
    throw Error("decoding past the context of " + std::to_string(cfg_.context) + " bytes");
  const int64_t position = decoded_ + 1;  // input position of this byte (0 is the start id)
  in_ids_.copy_(bytes.view({-1, 1}));
  pos_.fill_(position);
  for (auto& c : caches_) c.len = position + 1;
  ++decoded_;
  return static_span(position + 1, cfg_.context);
}

void TransformerImpl::static_compute(int64_t span) {
  auto logits = project(head, model->step(embed(in_ids_), pos_, span, caches_));  // (B, 1, 256)
  static_logits_.copy_(logits.select(1, 0));
}

void TransformerImpl::rows_begin(int64_t slots) {
  caches_ = model->make_caches(slots, cfg_.context, std::move(caches_));
  row_decoded_.assign(size_t(slots), kRowNotStarted);
  decoded_ = 0;
}

TokenRowInputs token_row_inputs(const LanguageModelImpl& model, const std::vector<RowFeed>& feeds, int64_t start_id,
                                int64_t id_offset, const torch::Device& device) {
  const int64_t R = int64_t(feeds.size());
  int64_t n = 1;
  for (const auto& f : feeds) n = std::max<int64_t>(n, int64_t(f.ids.size()) + (f.restart ? 1 : 0));
  // Input position p of a row holds the start id (p = 0) or id p - 1 of the row since its restart.
  std::vector<int64_t> ids(size_t(R * n), 0), rows, pos0, counts, last;
  for (int64_t r = 0; r < R; ++r) {
    const RowFeed& f = feeds[r];
    int64_t* row = &ids[size_t(r * n)];
    if (f.restart) *row++ = start_id;
    for (int64_t id : f.ids) *row++ = id + id_offset;
    rows.push_back(f.slot);
    pos0.push_back(f.restart ? 0 : model.row_decoded(f.slot) + 1);
    counts.push_back(int64_t(f.ids.size()) + (f.restart ? 1 : 0));
    last.push_back(r * n + counts.back() - 1);
  }
  TokenRowInputs in;
  in.batch = make_row_batch(rows, model.row_slots(), pos0, counts, n, model.config().context, device);
  // copy = true: the vectors die with this call, and to() would alias them on the CPU.
  in.ids = torch::from_blob(ids.data(), {R, n}, torch::kLong).to(device, torch::kLong, false, true);
  in.last = torch::from_blob(last.data(), {R}, torch::kLong).to(device, torch::kLong, false, true);
  return in;
}

int64_t keep_token_row(std::vector<int64_t>& decoded, std::vector<KVCache>& caches, int64_t from, int64_t to,
                       int64_t ids) {
  const int64_t have = decoded.at(size_t(from));
  if (have == kRowNotStarted || ids < 0) return kRowNotStarted;
  const int64_t keep = std::min(ids, have);
  copy_cache_rows(caches, from, to, keep + 1);  // the start id and the ids kept
  decoded.at(size_t(to)) = keep;
  return keep;
}

torch::Tensor TransformerImpl::rows_feed(const std::vector<RowFeed>& feeds, bool every_id) {
  const auto after = check_row_feeds(feeds, cfg_.context - 1, unit_, vocab_);
  const int64_t R = int64_t(feeds.size());
  const auto in = token_row_inputs(*this, feeds, vocab_, 0, head->weight.device());
  auto h = model->rows(embed(in.ids), in.batch, caches_);                                             // (R, n, D)
  auto out = every_id ? project(head, h)                                                              // (R, n, V)
                      : project(head, h.reshape({R * in.ids.size(1), -1}).index_select(0, in.last));  // (R, V)
  for (int64_t r = 0; r < R; ++r) row_decoded_[size_t(feeds[r].slot)] = after[size_t(r)];
  return out;
}

int64_t TransformerImpl::rows_keep(int64_t from, int64_t to, int64_t ids) {
  return keep_token_row(row_decoded_, caches_, from, to, ids);
}

double TransformerImpl::matmul_flops_per_position() const {
  return stack_matmul_flops(cfg_.global) + 2.0 * cfg_.global.width * double(vocab_);
}

double TransformerImpl::attention_flops_per_position() const {
  return stack_attention_flops(cfg_.global, double(cfg_.context));
}

int64_t TransformerImpl::matmul_params() const {  // all but the embedding, norms and other 1-D parameters
  int64_t n = num_params() - embed->weight.numel();
  for (auto& prm : model->named_parameters())
    if (prm.value().dim() < 2) n -= prm.value().numel();
  return n;
}

std::vector<FlopsPart> TransformerImpl::flops() const {
  FlopsPart p;
  p.name = "model";
  p.params = num_params();
  p.matmul_params = matmul_params();
  p.matmul_flops = matmul_flops_per_position();
  p.attention_flops = attention_flops_per_position();
  return {p};
}

}  // namespace bytelm
