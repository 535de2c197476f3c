// progress.cpp — see progress.h.
#include "train/progress.h"

#include <cmath>
#include <cstdio>
#include <string>

#include "util/format.h"

namespace bytelm {

using Clock = std::chrono::steady_clock;

std::string shown(double v, const char* fmt) {
  if (std::isnan(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

Progress::Progress(const TrainOptions& opt, int64_t context, int64_t start_step, const double* flops_per_byte,
                   double peak, MetricsFile& metrics)
    : opt_(opt),
      context_(context),
      start_step_(start_step),
      flops_per_byte_(flops_per_byte),
      peak_(peak),
      metrics_(metrics),
      tty_(stderr_is_tty()),
      t_start_(Clock::now()),
      t_last_(t_start_),
      loss_(NAN),
      last_val_(NAN) {}

double Progress::elapsed() const { return std::chrono::duration<double>(Clock::now() - t_start_).count(); }

void Progress::validated(int64_t step, double bpb) {
  last_val_ = bpb;
  metrics_.write({{"step", step}, {"val_bpb", bpb}, {"elapsed_s", elapsed()}});
  if (!tty_ && !muted_) std::fprintf(stderr, "step %lld: val bpb %s\n", (long long)step, shown(bpb, "%.4f").c_str());
}

void Progress::stepped(int64_t step, bool log, bool final_line, double loss, double grad_norm, double lr,
                       double bytes_per_patch) {
  bytes_since_ += opt_.batch * opt_.accum * context_;
  if (!log && !tty_) return;
  const auto now = Clock::now();
  const double dt = std::chrono::duration<double>(now - t_last_).count();
  const double bps = dt > 0 ? double(bytes_since_) / dt : 0;
  const double eta = double(opt_.steps - step) * (elapsed() / double(step - start_step_));
  const double flops = *flops_per_byte_;
  if (log) {
    loss_ = loss;
    nlohmann::json line{
        {"step", step},           {"loss", loss},       {"bpb", loss / std::log(2.0)}, {"lr", lr},
        {"grad_norm", grad_norm}, {"bytes_per_s", bps}, {"flops_per_s", bps * flops},  {"mfu", bps * flops / peak_},
        {"elapsed_s", elapsed()}};
    if (!std::isnan(bytes_per_patch)) line["mean_bytes_per_patch"] = bytes_per_patch;
    metrics_.write(line);
    t_last_ = now;
    bytes_since_ = 0;
    if (!tty_ && !muted_)
      std::fprintf(stderr, "step %lld/%lld loss %.4f bpb %.3f lr %.2e gnorm %.2f %sB/s mfu %.1f%% eta %s\n",
                   (long long)step, (long long)opt_.steps, loss, loss / std::log(2.0), lr, grad_norm,
                   format_rate(bps).c_str(), 100 * bps * flops / peak_, format_duration(eta).c_str());
  }
  if (tty_ && !muted_) draw_bar(step, bps, eta, final_line);
}

void Progress::draw_bar(int64_t step, double bps, double eta, bool final_line) const {
  const int width = 24;
  const int filled = int(width * double(step) / double(opt_.steps));
  const std::string bar = std::string(size_t(filled), '#') + std::string(size_t(width - filled), '.');
  std::fprintf(stderr, "\r[%s] %lld/%lld loss %s bpb %s val %s %sB/s eta %s   ", bar.c_str(), (long long)step,
               (long long)opt_.steps, shown(loss_).c_str(), shown(loss_ / std::log(2.0)).c_str(),
               shown(last_val_).c_str(), format_rate(bps).c_str(), format_duration(eta).c_str());
  if (final_line) std::fprintf(stderr, "\n");
}

}  // namespace bytelm
