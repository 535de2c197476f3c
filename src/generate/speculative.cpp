// speculative.cpp — speculative decoding at batch 1 (see speculative.h).
// State between rounds: `text` is the target's window (as in generate(): at most T-1 bytes, the last half
// kept when it grows past), its last byte t0 committed but not yet fed to either model; `dtext` is what the
// draft has been fed (a suffix of the committed bytes before t0, in the draft's own window).
#include "generate/speculative.h"

#include <torch/torch.h>

#include <algorithm>

#include "model/decode_weights.h"
#include "model/model.h"
#include "util/device.h"
#include "util/error.h"

namespace bytelm {

int draw_from(const std::vector<double>& d, std::mt19937_64& rng) {
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  double acc = 0;
  int last = 0;
  for (size_t v = 0; v < d.size(); ++v) {
    if (d[v] <= 0) continue;
    last = int(v);
    acc += d[v];
    if (u < acc) return int(v);
  }
  return last;  // rounding left u above the total: the last possible value
}

namespace {

std::string tail(const std::string& s, size_t n) { return s.size() > n ? s.substr(s.size() - n) : s; }

bool ends_with_stop(const std::string& out, const std::vector<std::string>& stops) {
  for (const auto& s : stops)
    if (!s.empty() && out.size() >= s.size() && out.compare(out.size() - s.size(), s.size(), s) == 0) return true;
  return false;
}

// One generation: both models, the windows, the random stream and the output.
class Speculation {
 public:
  Speculation(LanguageModelImpl& target, LanguageModelImpl& draft, const GenerateOptions& opt,
              const SpeculativeOptions& spec, const std::function<void(uint8_t)>& sink)
      : target_(target), draft_(draft), opt_(opt), spec_(spec), sink_(sink), device_(opt.device), rng_(opt.seed) {}

  void counts(SpeculativeStats& stats) { finish(stats); }
  std::string run(SpeculativeStats& stats) {
    const int64_t T = target_.config().context;
    if (int64_t(opt_.prompt.size()) >= T)
      throw Error("prompt of " + std::to_string(opt_.prompt.size()) + " bytes does not fit the context of " +
                  std::to_string(T) + " bytes (at most " + std::to_string(T - 1) + ")");
    text_ = opt_.prompt;
    if (text_.empty()) {  // no t0 yet: the first byte from the target's start state, as generate() draws it
      auto logits = target_.start(1).view({-1});
      ++rounds_;
      if (emit(draw_from(target_distribution(logits, text_), rng_))) return finish(stats);
    } else {
      prefill(target_, text_.substr(0, text_.size() - 1));
    }
    prefill_draft(spec_.draft_max);
    while (!round()) {
    }
    return finish(stats);
  }

 private:
  // Restarts `m` and feeds it `s`.
  void prefill(LanguageModelImpl& m, const std::string& s) {
    m.start(1);
    if (!s.empty()) m.feed(bytes(s));
  }
  // The draft reads the target's window (without t0) when it fits with `room` more bytes, else its last
  // half context: a draft with the target's context sees exactly what the target sees, so a draft equal
  // to the target is always accepted under greedy decoding.
  void prefill_draft(int64_t room) {
    const int64_t Td = draft_.config().context;
    dtext_ = text_.substr(0, text_.size() - 1);
    if (int64_t(dtext_.size()) + room + 1 > Td - 1) dtext_ = tail(dtext_, size_t(window_kept(Td)));
    prefill(draft_, dtext_);
  }
  torch::Tensor bytes(const std::string& s) {  // (1, n) int64 on the device
    auto t = torch::from_blob(const_cast<char*>(s.data()), {1, int64_t(s.size())}, torch::kUInt8);
    return t.to(device_, torch::kLong);
  }
  // Final sampling distribution over the 256 byte values from the target's logits (V) after `recent`.
  std::vector<double> target_distribution(const torch::Tensor& logits, const std::string& recent) {
    auto l = host_bytes(logits, target_);
    return sampling_distribution(l.data_ptr<float>(), 256, opt_, recent);
  }
  static torch::Tensor host_bytes(const torch::Tensor& logits, const LanguageModelImpl& m) {  // (V) -> (256)
    return logits.narrow(-1, m.vocab_offset(), 256).to(torch::kCPU, torch::kFloat32).contiguous();
  }
  // Appends byte b to the output; true when generation is over (a stop string or max_bytes).
  bool emit(int b) {
    out_.push_back(char(b));
    text_.push_back(char(b));
    sink_(uint8_t(b));
    return ends_with_stop(out_, opt_.stop) || int64_t(out_.size()) >= opt_.max_bytes;
  }
  // The counts so far (also after an exception from the sink), and the bytes emitted.
  std::string finish(SpeculativeStats& stats) {
    stats.generated = int64_t(out_.size());
    stats.rounds = rounds_;
    stats.drafted = drafted_;
    stats.accepted = accepted_;
    return out_;
  }
  int64_t room();
  bool round();

  LanguageModelImpl& target_;
  LanguageModelImpl& draft_;
  const GenerateOptions& opt_;
  const SpeculativeOptions& spec_;
  const std::function<void(uint8_t)>& sink_;
  torch::Device device_;
  std::mt19937_64 rng_;
  std::string text_, dtext_, out_;  // the target's window, the draft's fed bytes, the output
  int64_t rounds_ = 0, drafted_ = 0, accepted_ = 0;
};

// Slides the windows that are full and returns k, the most bytes this round may draft: the target checks
// text + k bytes within its window (so every byte is predicted from the window generate() would use), the
// draft feeds at most k + 1 bytes, and the round emits at most k + 1 bytes.
int64_t Speculation::room() {
  const int64_t T = target_.config().context, Td = draft_.config().context;
  const bool slid = int64_t(text_.size()) > T - 1;
  if (slid) {
    text_ = tail(text_, size_t(window_kept(T)));
    prefill(target_, text_.substr(0, text_.size() - 1));
  }
  int64_t k = std::min({spec_.draft_max, T - 1 - int64_t(text_.size()), opt_.max_bytes - int64_t(out_.size()) - 1});
  if (slid || int64_t(dtext_.size()) + k + 1 > Td - 1) prefill_draft(k);
  return std::max<int64_t>(0, std::min(k, Td - 2 - int64_t(dtext_.size())));
}

// One round: draft, verify in one target feed, accept, roll both caches back. True when generation is over.
bool Speculation::round() {
  const int64_t k_max = room();
  const std::string t0 = text_.substr(text_.size() - 1);
  std::string block = t0;  // t0 then the drafted bytes
  std::vector<std::vector<double>> q;
  std::vector<int> x;
  int64_t draft_fed = 0;
  for (int64_t i = 0; i < k_max; ++i) {
    auto dl = draft_.feed(bytes(block.substr(size_t(i), 1))).view({-1});
    ++draft_fed;
    auto host = host_bytes(dl, draft_);
    const std::string recent = text_ + block.substr(1);
    if (top_probability(host.data_ptr<float>(), 256, opt_, recent) < spec_.draft_p_min) break;
    q.push_back(sampling_distribution(host.data_ptr<float>(), 256, opt_, recent));
    x.push_back(draw_from(q.back(), rng_));
    block.push_back(char(x.back()));
  }
  const int64_t k = int64_t(x.size());
  auto logits = target_.feed(bytes(block)).view({k + 1, -1});  // (k+1, V)
  auto host = host_bytes(logits, target_);                     // (k+1, 256)
  std::vector<std::vector<double>> p;
  for (int64_t i = 0; i <= k; ++i)
    p.push_back(sampling_distribution(host[i].data_ptr<float>(), 256, opt_, text_ + block.substr(1, size_t(i))));
  const Verdict v = verify_draft(p, q, x, rng_);
  ++rounds_;
  drafted_ += k;
  accepted_ += v.accepted;
  // Caches: the target keeps t0 and the n accepted bytes; the draft gets to the same bytes.
  target_.rewind(k - v.accepted);
  const int64_t keep = v.accepted + 1;
  if (draft_fed > keep)
    draft_.rewind(draft_fed - keep);
  else if (draft_fed < keep)
    draft_.feed(bytes(block.substr(size_t(draft_fed), size_t(keep - draft_fed))));
  dtext_ += block.substr(0, size_t(keep));
  for (int64_t i = 0; i < v.accepted; ++i)
    if (emit(x[size_t(i)])) return true;
  return emit(v.next);
}

}  // namespace

std::vector<double> residual_distribution(const std::vector<double>& p, const std::vector<double>& q) {
  std::vector<double> r(p.size());
  double sum = 0;
  for (size_t v = 0; v < p.size(); ++v) sum += r[v] = std::max(0.0, p[v] - q[v]);
  if (!(sum > 0)) return p;
  for (auto& x : r) x /= sum;
  return r;
}

Verdict verify_draft(const std::vector<std::vector<double>>& p, const std::vector<std::vector<double>>& q,
                     const std::vector<int>& x, std::mt19937_64& rng) {
  Verdict v;
  for (; v.accepted < int64_t(x.size()); ++v.accepted) {
    const size_t i = size_t(v.accepted), b = size_t(x[i]);
    // q[i][b] > 0: x[i] was drawn from q[i]. u < p/q accepts with probability min(1, p/q).
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    if (!(u * q[i][b] < p[i][b])) {
      v.next = draw_from(residual_distribution(p[i], q[i]), rng);
      return v;
    }
  }
  v.next = draw_from(p[x.size()], rng);
  return v;
}

void check_speculative_options(const SpeculativeOptions& s) {
  if (s.draft_max < 1) throw Error("--draft-max must be >= 1");
  if (!(s.draft_p_min >= 0 && s.draft_p_min <= 1)) throw Error("--draft-p-min must be in [0, 1]");
}

void check_speculative(const LanguageModelImpl& target, const LanguageModelImpl& draft, const SpeculativeOptions& s) {
  check_speculative_options(s);
  for (const auto* m : {&target, &draft}) {
    const std::string role = m == &target ? "the target (--ckpt)" : "the draft (--draft)";
    if (m->reads_tokens())
      throw Error("--draft: " + role + " is a " + m->config().model + " model, which reads tokens, not bytes");
    if (!m->can_rewind())
      throw Error("--draft: " + role + " is a " + m->config().model +
                  " model, which cannot rewind its decoding caches (speculative decoding needs it)");
  }
}

std::string generate_speculative(LanguageModelImpl& target, LanguageModelImpl& draft, const GenerateOptions& opt,
                                 const SpeculativeOptions& spec, const std::function<void(uint8_t)>& sink,
                                 SpeculativeStats* stats) {
  check_speculative(target, draft, spec);
  c10::InferenceMode inference;
  const torch::Device device(opt.device);
  AutocastScope autocast(device, use_bf16(opt.precision, opt.device));
  Bf16Decoding bf16_weights(opt.decode_weights == "bf16");
  SpeculativeStats s;
  Speculation run(target, draft, opt, spec, sink);
  try {
    std::string out = run.run(s);
    if (stats) *stats = s;
    return out;
  } catch (...) {  // e.g. the sink ends generation early: the rounds so far still count
    run.counts(s);
    if (stats) *stats = s;
    throw;
  }
}

}  // namespace bytelm
