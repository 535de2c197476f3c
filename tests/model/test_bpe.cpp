// test_bpe.cpp — the BPE baseline (--model bpe): causality, cached decoding equal to the full forward pass,
// bits per byte equal to the summed token losses over the raw bytes (against a slow per-token reference),
// overfitting a tiny corpus, and a checkpoint (weights + tokenizer) that round-trips.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "data/corpus.h"
#include "data/token_corpus.h"
#include "eval/token_evaluate.h"
#include "model/bpe.h"
#include "model/checkpoint.h"
#include "model/factory.h"
#include "tokenizer/tokenizer.h"

namespace bytelm {
namespace {

ModelConfig tiny_config(int64_t vocab, int64_t context = 16) {
  ModelConfig c;
  c.model = "bpe";
  c.context = context;
  c.vocab_size = vocab;
  c.global.layers = 2;
  c.global.width = 32;
  c.global.heads = 2;
  c.global.rope_theta = 10000;
  c.validate();
  return c;
}

// Text from a lexicon of 300 random lower-case words, so a few hundred pieces can be learned.
std::string lexicon_text(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::mt19937 lex_rng(99);
  std::vector<std::string> words;
  for (int i = 0; i < 300; ++i) {
    std::string w;
    for (uint32_t k = 0, len = 2 + lex_rng() % 7; k < len; ++k) w += char('a' + lex_rng() % 26);
    words.push_back(w);
  }
  std::string s;
  while (s.size() < n) s += words[rng() % words.size()] + (rng() % 12 == 0 ? ".\n" : " ");
  return s;
}

const Tokenizer& tokenizer() {
  static const Tokenizer t = [] {
    TokenizerTrainOptions o;
    o.vocab = 400;
    return Tokenizer::train({lexicon_text(100000, 1)}, o);
  }();
  return t;
}

TEST(Bpe, IsCausal) {
  torch::manual_seed(0);
  auto model = make_model(tiny_config(400));
  model->eval();
  torch::NoGradGuard ng;
  auto x = torch::randint(3, 400, {2, 16}, torch::kLong);
  auto base = model->forward(x);  // (B, T, V)
  EXPECT_EQ(base.sizes(), (std::vector<int64_t>{2, 16, 400}));
  for (int64_t k : {0, 7, 15}) {
    auto y = x.clone();
    y.index_put_({torch::indexing::Slice(), k}, (y.index({torch::indexing::Slice(), k}) + 1) % 400);
    auto out = model->forward(y);
    // logits[:, t] predicts token t from tokens < t: positions <= k cannot see the change.
    EXPECT_TRUE(torch::allclose(out.narrow(1, 0, k + 1), base.narrow(1, 0, k + 1), 1e-5, 1e-5)) << k;
    if (k + 1 < 16) EXPECT_FALSE(torch::allclose(out.narrow(1, k + 1, 1), base.narrow(1, k + 1, 1), 1e-5, 1e-5)) << k;
  }
}

TEST(Bpe, CachedDecodingEqualsForward) {
  torch::manual_seed(1);
  auto model = make_model(tiny_config(400));
  model->eval();
  torch::NoGradGuard ng;
  auto x = torch::randint(3, 400, {2, 16}, torch::kLong);
  auto full = model->forward(x);
  auto first = model->start(2);
  EXPECT_TRUE(torch::allclose(first, full.select(1, 0), 1e-4, 1e-4));
  auto rest = torch::cat({model->feed(x.narrow(1, 0, 5)), model->feed(x.narrow(1, 5, 10))}, 1);  // predicts 1..15
  EXPECT_TRUE(torch::allclose(rest, full.narrow(1, 1, 15), 1e-4, 1e-4));
  EXPECT_THROW(model->feed(x.narrow(1, 0, 1)), std::exception);  // past the context
}

TEST(Bpe, FlopsPerByteArePerTokenOverBytesPerToken) {
  auto model = make_model(tiny_config(400));
  auto& bpe = static_cast<BpeModelImpl&>(*model);
  bpe.set_bytes_per_position(1.0);
  const double per_token = model->forward_flops_per_byte();
  EXPECT_DOUBLE_EQ(per_token, bpe.forward_flops_per_position());
  bpe.set_bytes_per_position(4.0);
  EXPECT_NEAR(model->forward_flops_per_byte(), per_token / 4.0, 1e-6 * per_token);
}

// Bits per byte = every token's -ln p (windows of T tokens, each from the start state) over the raw bytes.
TEST(Bpe, BitsPerByteIsSummedTokenLossOverBytes) {
  if (!tokenizer_available()) GTEST_SKIP() << "built without SentencePiece";
  const auto dir = std::filesystem::temp_directory_path() / "bytelm_test_bpe_bpb";
  std::filesystem::create_directories(dir);
  std::string text = lexicon_text(700, 5);
  text += std::string("\xFF\x00\xC3 binary tail", 15);  // bytes that are not UTF-8 count like any other
  std::ofstream(dir / "a.txt", std::ios::binary) << text;
  Corpus corpus({dir.string()}, 0.0);
  TokenCorpus tokens(corpus, tokenizer(), {Split::All});
  ASSERT_EQ(tokens.bytes(Split::All), int64_t(text.size()));
  ASSERT_EQ(tokenizer().decode(tokens.ids(Split::All)), text);

  torch::manual_seed(2);
  const int64_t T = 16;
  auto model = make_model(tiny_config(400, T));
  model->eval();
  auto files = score_token_files(*model, tokens, Split::All, 3, "cpu", false);
  ASSERT_EQ(files.size(), 1u);

  // Slow reference: token by token, each scored from its window's own prefix (a fresh forward pass each).
  torch::NoGradGuard ng;
  const auto& ids = tokens.ids(Split::All);
  double nats = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const size_t w0 = i - i % size_t(T);  // its window starts here
    std::vector<int64_t> prefix(ids.begin() + long(w0), ids.begin() + long(i) + 1);
    auto x = torch::tensor(prefix, torch::kLong).view({1, -1});
    auto logp = torch::log_softmax(model->forward(x).select(1, int64_t(prefix.size()) - 1), -1);  // (1, V)
    nats -= logp[0][ids[i]].item<double>();
  }
  EXPECT_NEAR(files[0].nats, nats, 1e-3 * nats);
  EXPECT_EQ(files[0].bytes, int64_t(text.size()));
  EXPECT_EQ(files[0].tokens, int64_t(ids.size()));
  const double bpb = files[0].nats / double(files[0].bytes) / std::log(2.0);
  EXPECT_NEAR(bpb, nats / double(text.size()) / std::log(2.0), 1e-3 * bpb);
  std::filesystem::remove_all(dir);
}

TEST(Bpe, OverfitsATinyCorpus) {
  if (!tokenizer_available()) GTEST_SKIP() << "built without SentencePiece";
  torch::manual_seed(3);
  const auto ids = tokenizer().encode(lexicon_text(400, 8));
  const int64_t T = 32;
  ASSERT_GE(int64_t(ids.size()), T);
  auto x = torch::tensor(std::vector<int64_t>(ids.begin(), ids.begin() + T), torch::kLong).view({1, T});
  auto model = make_model(tiny_config(400, T));
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-2));
  double first = 0, last = 0;
  for (int step = 0; step < 150; ++step) {
    auto loss = byte_loss(model->forward(x), x);
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (step == 0) first = loss.item<double>();
    last = loss.item<double>();
  }
  EXPECT_GT(first, 5.0);  // ~ln 400 at initialisation
  EXPECT_LT(last, 0.3);   // memorised after the first token
}

TEST(Bpe, CheckpointRoundTripsWithItsTokenizer) {
  if (!tokenizer_available()) GTEST_SKIP() << "built without SentencePiece";
  const auto dir = (std::filesystem::temp_directory_path() / "bytelm_test_bpe_ckpt").string();
  std::filesystem::remove_all(dir);
  torch::manual_seed(4);
  auto model = make_model(tiny_config(400));
  save_model(dir, *model);
  tokenizer().save(dir + "/" + kTokenizerFile);
  auto loaded = load_model(dir);
  EXPECT_EQ(loaded->config().to_json(), model->config().to_json());
  torch::NoGradGuard ng;
  model->eval();
  loaded->eval();
  auto x = torch::randint(3, 400, {1, 16}, torch::kLong);
  EXPECT_TRUE(torch::equal(loaded->forward(x), model->forward(x)));
  const auto tok = load_checkpoint_tokenizer(dir, loaded->config().vocab_size);
  EXPECT_EQ(tok.encode(std::string("abc def")), tokenizer().encode(std::string("abc def")));
  EXPECT_THROW(load_checkpoint_tokenizer(dir, 512), std::exception);  // vocabulary disagrees with the model
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace bytelm
