// blt_patching.cpp — BLT's patching glue: the configured rule, entropies from its patcher, patch lengths,
// measuring and calibrating the mean patch size (see blt.h).
#include "model/blt.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "blt/hash.h"
#include "model/module_util.h"
#include "util/device.h"
#include "util/error.h"

namespace bytelm {

blt::PatcherOptions patcher_options(const PatchingConfig& p) {
  blt::PatcherOptions o;
  o.mode = p.mode == "static"  ? blt::PatchingMode::Static
           : p.mode == "space" ? blt::PatchingMode::Space
           : p.mode == "byte"  ? blt::PatchingMode::Byte
                               : blt::PatchingMode::Entropy;
  if (p.monotonicity) {
    o.rule = blt::EntropyRule::Relative;
    o.relative_threshold = p.threshold;
  } else if (p.threshold_add > 0) {
    o.rule = blt::EntropyRule::Combined;
    o.threshold = p.threshold;
    o.relative_threshold = p.threshold_add;
  } else {
    o.rule = blt::EntropyRule::Global;
    o.threshold = p.threshold;
  }
  o.patch_size = p.patch_size;
  if (p.max_patch_length > 0) o.max_patch_length = p.max_patch_length;
  o.alignment = blt::Alignment::NextByte;  // causal at every position; equals HF on every scored position
  return o;
}

void BltImpl::set_patching(const PatchingConfig& patching) {
  ModelConfig c = cfg_;
  c.patching = patching;
  c.validate();
  rule_ = blt::Patcher(patcher_options(patching));
  cfg_ = c;
}

std::vector<int64_t> BltImpl::patch_lengths(const std::vector<int64_t>& ids,
                                            const std::vector<float>& entropies) const {
  return rule_.patch_lengths(ids.data(), rule_.needs_entropies() ? entropies.data() : nullptr, int64_t(ids.size()));
}

torch::Tensor BltImpl::entropies(const torch::Tensor& ids) {
  if (!rule_.needs_entropies()) return {};
  torch::NoGradGuard no_grad;
  return entropy_of(model->patcher->logits(ids)).to(torch::kCPU).contiguous();  // (B, N)
}

std::vector<std::vector<int64_t>> BltImpl::batch_patch_lengths(const torch::Tensor& ids) {
  const int64_t B = ids.size(0), N = ids.size(1);
  auto ent = entropies(ids);
  auto ids_cpu = ids.to(torch::kCPU).contiguous();
  std::vector<std::vector<int64_t>> out;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> idv(ids_cpu.data_ptr<int64_t>() + b * N, ids_cpu.data_ptr<int64_t>() + (b + 1) * N);
    std::vector<float> ev;
    if (ent.defined()) ev.assign(ent.data_ptr<float>() + b * N, ent.data_ptr<float>() + (b + 1) * N);
    out.push_back(patch_lengths(idv, ev));
  }
  return out;
}

double BltImpl::measure_patch_size(const torch::Tensor& bytes) {
  torch::NoGradGuard no_grad;
  auto ids = torch::cat({torch::full({bytes.size(0), 1}, blt::kBos, bytes.options()), bytes + blt::kByteOffset}, 1);
  double total = 0;
  for (const auto& lengths : batch_patch_lengths(ids)) total += blt::mean_bytes_per_patch(lengths);
  return total / double(bytes.size(0));
}

double BltImpl::take_training_patch_size() {
  const double mean = tally_rows_ > 0 ? tally_sum_ / double(tally_rows_) : NAN;
  tally_sum_ = 0;
  tally_rows_ = 0;
  return mean;
}

double BltImpl::calibrate_threshold(const torch::Tensor& bytes, double bytes_per_patch) {
  if (cfg_.patching.mode != "entropy")
    throw Error("--bytes-per-patch needs entropy patching (this config uses " + cfg_.patching.mode + " patching)");
  torch::NoGradGuard no_grad;
  auto ids = torch::cat({torch::full({bytes.size(0), 1}, blt::kBos, bytes.options()), bytes + blt::kByteOffset}, 1);
  auto ent = entropies(ids);  // (B, N) on the CPU
  auto ids_cpu = ids.to(torch::kCPU).contiguous();
  const int64_t B = ids.size(0), N = ids.size(1);
  std::vector<std::vector<int64_t>> rows(B);
  std::vector<std::vector<float>> row_ent(B);
  float max_entropy = 0;
  for (int64_t b = 0; b < B; ++b) {
    rows[b].assign(ids_cpu[b].data_ptr<int64_t>(), ids_cpu[b].data_ptr<int64_t>() + N);
    row_ent[b].assign(ent[b].data_ptr<float>(), ent[b].data_ptr<float>() + N);
    for (float h : row_ent[b]) max_entropy = std::max(max_entropy, h);
  }
  const PatchingConfig base = cfg_.patching;
  auto mean_at = [&](double threshold) {  // mean bytes per patch under the rule with this threshold
    PatchingConfig p = base;
    p.threshold = threshold;
    set_patching(p);
    double total = 0;
    for (int64_t b = 0; b < B; ++b) total += blt::mean_bytes_per_patch(patch_lengths(rows[b], row_ent[b]));
    return total / double(B);
  };
  double lo = 0, hi = double(max_entropy) + 1;
  const double reachable = mean_at(hi);
  if (reachable < bytes_per_patch) {
    set_patching(base);
    throw Error("--bytes-per-patch " + std::to_string(bytes_per_patch) +
                ": this entropy model and config reach at most " + std::to_string(reachable) + " bytes per patch");
  }
  for (int it = 0; it < 40; ++it) {  // the mean patch size grows with the threshold
    const double mid = 0.5 * (lo + hi);
    (mean_at(mid) < bytes_per_patch ? lo : hi) = mid;
  }
  mean_at(hi);
  return hi;
}

std::shared_ptr<EntropyModelImpl> standalone_patcher(const BltImpl& blt) {
  const ModelConfig& cfg = blt.config();
  if (!cfg.has_patcher || !blt.model->patcher) throw Error("this BLT checkpoint has no patcher (entropy model)");
  ModelConfig ec;
  ec.model = "entropy";
  ec.context = cfg.patcher_context;
  ec.global = cfg.patcher;
  auto entropy = std::make_shared<EntropyModelImpl>(ec);
  torch::NoGradGuard no_grad;
  auto dst = entropy->named_parameters();
  for (const auto& p : blt.model->patcher->named_parameters()) dst.find("patcher." + p.key())->copy_(p.value());
  entropy->to(blt.lm_head->weight.device());
  entropy->eval();
  return entropy;
}

// ---- Hooks of the model interface (model.h)

double BltImpl::count_patches_of(const torch::Tensor& bytes) {
  set_mean_patch_size(measure_patch_size(bytes));
  return mean_patch_size_;
}

double BltImpl::take_training_patches() {
  const double bytes_per_patch = take_training_patch_size();
  if (!std::isnan(bytes_per_patch)) set_mean_patch_size(bytes_per_patch);
  return bytes_per_patch;
}

// BLT gains over a byte model only when patches are several bytes long; the paper's are 4.5-8.
std::string BltImpl::patching_warning() const {
  char line[256];
  const double mean = mean_patch_size_;
  if (cfg_.patching.mode == "entropy" && mean < 2.0)
    std::snprintf(line, sizeof line,
                  "%.2f bytes per patch is almost byte-level, so BLT saves little compute; train the entropy model "
                  "longer or set --bytes-per-patch (e.g. 4.5)",
                  mean);
  else if (mean > 16.0)
    std::snprintf(line, sizeof line,
                  "%.2f bytes per patch is very coarse; the local models must predict long patches (lower "
                  "--bytes-per-patch)",
                  mean);
  else
    return "";
  return line;
}

void BltImpl::attach_entropy_model(const LanguageModelImpl& entropy) { load_patcher(*this, entropy); }

std::shared_ptr<LanguageModelImpl> BltImpl::entropy_patcher() { return standalone_patcher(*this); }

}  // namespace bytelm
