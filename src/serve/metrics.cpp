// metrics.cpp — Prometheus text for `bytelm serve` (see metrics.h).
#include "serve/metrics.h"

#include <cstdio>
#include <limits>

namespace bytelm::serve {

namespace {
constexpr double kTtfbBounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
constexpr double kRateWindow = 10.0;  // seconds of the bytes/s gauge

std::string num(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", x);
  return buf;
}
}  // namespace

void Metrics::request(const std::string& route, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{route, status}];
}

void Metrics::prompt_bytes(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_bytes_ += n;
}

void Metrics::generated(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  generated_ += n;
  const auto now = Clock::now();
  // One slot per started second; the gauge sums the slots of the last kRateWindow seconds.
  if (recent_.empty() || now - recent_.back().first >= std::chrono::seconds(1))
    recent_.emplace_back(now, n);
  else
    recent_.back().second += n;
  while (!recent_.empty() && now - recent_.front().first > std::chrono::seconds(int(kRateWindow) + 1))
    recent_.pop_front();
}

void Metrics::first_byte(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  double bound = std::numeric_limits<double>::infinity();
  for (double b : kTtfbBounds)
    if (seconds <= b) {
      bound = b;
      break;
    }
  ++ttfb_buckets_[bound];
  ++ttfb_count_;
  ttfb_sum_ += seconds;
}

void Metrics::decode_step(int64_t rows) {
  std::lock_guard<std::mutex> lock(mu_);
  ++steps_;
  step_rows_ += rows;
}

void Metrics::restart() {
  std::lock_guard<std::mutex> lock(mu_);
  ++restarts_;
}

void Metrics::prefix_hits(int64_t hits, int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  prefix_hits_ += hits;
  prefix_bytes_ += bytes;
}

void Metrics::speculative(int64_t rounds, int64_t drafted, int64_t accepted) {
  std::lock_guard<std::mutex> lock(mu_);
  draft_rounds_ += rounds;
  drafted_ += drafted;
  draft_accepted_ += accepted;
}

void Metrics::prefill(int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  prefill_bytes_ += bytes;
}

void Metrics::refused(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++refused_[reason];
}

double Metrics::bytes_per_second() const {
  const auto now = Clock::now();
  int64_t bytes = 0;
  for (const auto& [t, n] : recent_)
    if (std::chrono::duration<double>(now - t).count() <= kRateWindow) bytes += n;
  return double(bytes) / kRateWindow;
}

std::string Metrics::render(int64_t processing, int64_t queued, int64_t slots) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string s;
  auto head = [&](const char* name, const char* type, const char* help) {
    s += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  // A metric without labels: its HELP and TYPE lines, then its one value.
  auto scalar = [&](const char* name, const char* type, const char* help, const std::string& value) {
    head(name, type, help);
    s += std::string(name) + " " + value + "\n";
  };
  head("bytelm_requests_total", "counter", "HTTP requests answered, by route and status code.");
  for (const auto& [key, n] : requests_)
    s += "bytelm_requests_total{route=\"" + key.first + "\",code=\"" + std::to_string(key.second) + "\"} " +
         std::to_string(n) + "\n";
  head("bytelm_refused_total", "counter",
       "Requests refused before or instead of their route, or abandoned by their client, by reason.");
  for (const auto& [reason, n] : refused_)
    s += "bytelm_refused_total{reason=\"" + reason + "\"} " + std::to_string(n) + "\n";
  scalar("bytelm_requests_processing", "gauge", "Completions being decoded (busy rows).", std::to_string(processing));
  scalar("bytelm_requests_queued", "gauge", "Completions waiting for a free row.", std::to_string(queued));
  scalar("bytelm_slots", "gauge", "Rows decoded together at most (--parallel).", std::to_string(slots));
  scalar("bytelm_prompt_bytes_total", "counter", "Prompt bytes of admitted completions.",
         std::to_string(prompt_bytes_));
  scalar("bytelm_generated_bytes_total", "counter", "Bytes generated.", std::to_string(generated_));
  scalar("bytelm_generated_bytes_per_second", "gauge", "Bytes generated per second over the last 10 s.",
         num(bytes_per_second()));
  scalar("bytelm_decode_steps_total", "counter", "Batched decoding steps.", std::to_string(steps_));
  scalar("bytelm_decode_step_rows_total", "counter",
         "Rows that sampled a byte, summed over steps (/ steps = mean batch).", std::to_string(step_rows_));
  scalar("bytelm_batch_restarts_total", "counter", "Batch restarts (re-prefills) because rows joined.",
         std::to_string(restarts_));
  scalar("bytelm_prefix_hits_total", "counter", "Completions that started from a prefix another row had cached.",
         std::to_string(prefix_hits_));
  scalar("bytelm_prefix_reused_bytes_total", "counter", "Prompt bytes not prefilled thanks to prefix reuse.",
         std::to_string(prefix_bytes_));
  scalar("bytelm_prefill_bytes_total", "counter", "Prompt bytes fed to the model (re-fed ones included).",
         std::to_string(prefill_bytes_));
  scalar("bytelm_draft_rounds_total", "counter", "Speculative rounds (one target feed each; --draft).",
         std::to_string(draft_rounds_));
  scalar("bytelm_draft_bytes_total", "counter", "Bytes the draft model proposed (--draft).", std::to_string(drafted_));
  scalar("bytelm_draft_accepted_bytes_total", "counter", "Drafted bytes the target accepted (--draft).",
         std::to_string(draft_accepted_));
  scalar("bytelm_draft_acceptance_ratio", "gauge", "Accepted / drafted bytes so far (0 before any draft).",
         num(drafted_ > 0 ? double(draft_accepted_) / double(drafted_) : 0.0));
  head("bytelm_time_to_first_byte_seconds", "histogram", "From a completion's arrival to its first generated byte.");
  int64_t cumulative = 0;
  for (double b : kTtfbBounds) {
    auto it = ttfb_buckets_.find(b);
    cumulative += it == ttfb_buckets_.end() ? 0 : it->second;
    s += "bytelm_time_to_first_byte_seconds_bucket{le=\"" + num(b) + "\"} " + std::to_string(cumulative) + "\n";
  }
  s += "bytelm_time_to_first_byte_seconds_bucket{le=\"+Inf\"} " + std::to_string(ttfb_count_) + "\n";
  s += "bytelm_time_to_first_byte_seconds_sum " + num(ttfb_sum_) + "\n";
  s += "bytelm_time_to_first_byte_seconds_count " + std::to_string(ttfb_count_) + "\n";
  return s;
}

}  // namespace bytelm::serve
