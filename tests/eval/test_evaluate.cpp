// test_evaluate.cpp — scoring against slow references: score_bytes equals the per-window sum of
// -log softmax at each byte (a window of the context at a time, the tail window shorter); score_files adds
// up per file; validation_bpb equals byte_loss averaged over the same sampled validation windows.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "data/corpus.h"
#include "eval/evaluate.h"
#include "eval/token_evaluate.h"
#include "model/config.h"
#include "model/factory.h"
#include "model/model.h"

using namespace bytelm;
namespace fs = std::filesystem;

namespace {

// Sum over bytes of -log p(byte | window so far), one window of T bytes at a time, batch 1.
double slow_nats(LanguageModelImpl& model, const std::string& bytes) {
  torch::NoGradGuard no_grad;
  const int64_t T = model.config().context;
  double total = 0;
  for (size_t start = 0; start < bytes.size(); start += size_t(T)) {
    const int64_t n = std::min<int64_t>(T, int64_t(bytes.size() - start));
    auto x = torch::empty({1, n}, torch::kLong);
    for (int64_t i = 0; i < n; ++i) x[0][i] = int64_t(uint8_t(bytes[start + size_t(i)]));
    auto logp = torch::log_softmax(model.forward(x).to(torch::kFloat64), -1);  // (1, n, V)
    for (int64_t i = 0; i < n; ++i) total -= logp[0][i][x[0][i].item<int64_t>() + model.vocab_offset()].item<double>();
  }
  return total;
}

class Scoring : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(Scoring, MatchesTheSlowReference) {
  torch::manual_seed(3);
  auto model = make_model(load_config("tiny", GetParam()));
  model->eval();
  const std::string dir = (fs::temp_directory_path() / ("bytelm_eval_" + std::to_string(::getpid()))).string();
  fs::create_directories(dir);
  std::string a, b;
  for (int i = 0; i < 300; ++i) a += char("the cat sat on the mat. "[i % 24]);
  for (int i = 0; i < 150; ++i) b += char(i * 37 % 256);  // any bytes; 150 is not a multiple of the context
  std::ofstream(dir + "/a.txt", std::ios::binary) << a;
  std::ofstream(dir + "/b.bin", std::ios::binary) << b;
  Corpus corpus({dir}, 0.0);
  auto files = score_files(*model, corpus, Split::All, 3, "cpu", false);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_NEAR(files[0].nats, slow_nats(*model, a), 1e-3);
  EXPECT_NEAR(files[1].nats, slow_nats(*model, b), 1e-3);
  EXPECT_EQ(files[0].bytes + files[1].bytes, 450);

  // Training's validation: the mean loss over the fixed windows, in bits.
  Corpus split({dir}, 0.2);
  const int64_t T = model->config().context, batch = 2, batches = 3;
  const int64_t len = std::min<int64_t>(T, split.size(Split::Val));
  double sum = 0;
  std::vector<uint8_t> buf(size_t(batch * len));
  for (int64_t i = 0; i < batches; ++i) {
    split.sample(Split::Val, 0x5eed, uint64_t(i), batch, len, buf.data());
    auto x = torch::from_blob(buf.data(), {batch, len}, torch::kUInt8).to(torch::kLong);
    torch::NoGradGuard no_grad;
    sum += byte_loss(model->forward(x), x, model->vocab_offset()).item<double>();
  }
  EXPECT_NEAR(validation_bpb(*model, split, batch, batches, "cpu", false), sum / batches / std::log(2.0), 1e-6);
  fs::remove_all(dir);
}

// Sliding windows: byte i is scored in the window that ends at e(i) = min(n, T + ceil((i + 1 - T) / S) * S)
// (the first window for i < T); computed here one byte and one forward pass at a time.
TEST_P(Scoring, SlidingWindowsMatchTheSlowReference) {
  torch::manual_seed(4);
  auto model = make_model(load_config("tiny", GetParam()));
  model->eval();
  const int64_t T = model->config().context, n = 150;
  std::string bytes;
  for (int64_t i = 0; i < n; ++i) bytes += char((i * 11 + i / 7) % 256);
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  for (int64_t stride : {int64_t(16), T / 2, T}) {
    double reference = 0;
    torch::NoGradGuard no_grad;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t end = i < T ? T : std::min(n, T + (i + 1 - T + stride - 1) / stride * stride);
      auto x = torch::empty({1, T}, torch::kLong);
      for (int64_t t = 0; t < T; ++t) x[0][t] = int64_t(data[end - T + t]);
      auto logp = torch::log_softmax(model->forward(x).to(torch::kFloat64), -1);
      reference -= logp[0][i - (end - T)][int64_t(data[i]) + model->vocab_offset()].item<double>();
    }
    EXPECT_NEAR(score_bytes_sliding(*model, data, n, stride, 3, "cpu"), reference, 1e-3) << "stride " << stride;
  }
  EXPECT_THROW(score_bytes_sliding(*model, data, n, T + 1, 3, "cpu"), std::exception);
  // With a stride of T on a multiple of T, sliding equals consecutive windows.
  EXPECT_NEAR(score_bytes_sliding(*model, data, 2 * T, T, 3, "cpu"), score_bytes(*model, data, 2 * T, 3, "cpu"), 1e-3);
}

// The BPE baseline scored with the byte models' protocol: sliding windows over token ids against the same
// one-token-at-a-time reference; a stride of T is score_tokens' consecutive windows.
TEST(TokenScoring, SlidingWindowsOverTokensMatchTheSlowReference) {
  torch::manual_seed(5);
  auto model = make_model(load_config("tiny", "bpe"));
  model->eval();
  const int64_t T = model->config().context, n = 2 * T + 7, V = model->config().vocab_size;
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back(int32_t((i * 13 + i / 5) % V));
  torch::NoGradGuard no_grad;
  for (int64_t stride : {int64_t(3), T / 2}) {
    double reference = 0;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t end = i < T ? T : std::min(n, T + (i + 1 - T + stride - 1) / stride * stride);
      auto x = torch::empty({1, T}, torch::kLong);
      for (int64_t t = 0; t < T; ++t) x[0][t] = int64_t(ids[size_t(end - T + t)]);
      auto logp = torch::log_softmax(model->forward(x).to(torch::kFloat64), -1);
      reference -= logp[0][i - (end - T)][int64_t(ids[size_t(i)]) + model->vocab_offset()].item<double>();
    }
    EXPECT_NEAR(score_tokens(*model, ids.data(), n, 3, "cpu", false, stride), reference, 1e-3) << "stride " << stride;
  }
  EXPECT_NEAR(score_tokens(*model, ids.data(), 2 * T, 3, "cpu", false, T),
              score_tokens(*model, ids.data(), 2 * T, 3, "cpu"), 1e-3);
  EXPECT_THROW(score_tokens(*model, ids.data(), n, 3, "cpu", false, T + 1), std::exception);
}

INSTANTIATE_TEST_SUITE_P(AllModels, Scoring, ::testing::Values("transformer", "megabyte", "entropy", "blt"));
