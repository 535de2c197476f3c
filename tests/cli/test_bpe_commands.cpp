// test_bpe_commands.cpp — the BPE baseline end to end through the binary: `tokenizer train` / `stats`,
// `train --model bpe` with a given tokenizer and with one trained as the run's first step, a self-contained
// checkpoint (tokenizer.model inside), eval in bits per byte with bytes per token, info, generate (bytes
// out, exact --max-bytes), and bad tokenizer files -> exit 2 with one line.
#include <random>

#include "cli/cli_harness.h"

namespace bytelm_test {
namespace {

class BpeCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = (fs::temp_directory_path() / ("bytelm_bpe_cli_" + std::to_string(getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_ + "/corpus");
    // A lexicon of 300 random words (so 512 pieces can be learned), and a binary file.
    std::mt19937 rng(7);
    std::vector<std::string> words;
    for (int i = 0; i < 300; ++i) {
      std::string w;
      for (uint32_t k = 0, len = 2 + rng() % 7; k < len; ++k) w += char('a' + rng() % 26);
      words.push_back(w);
    }
    std::string text;
    while (text.size() < 60000) text += words[rng() % words.size()] + (rng() % 12 == 0 ? ".\n" : " ");
    write(dir_ + "/corpus/a.txt", text);
    std::string bin(3000, '\0');
    for (auto& c : bin) c = char(rng() & 0xFF);
    write(dir_ + "/corpus/b.bin", bin);
    Result r = run({"tokenizer", "train", "--data", dir_ + "/corpus", "--vocab", "512", "--out", dir_ + "/tok"});
    if (r.code != 0 && r.err.find("bytelm_spm.so") != std::string::npos) {
      skip_ = true;  // built without SentencePiece: nothing to test
      return;
    }
    ASSERT_EQ(r.code, 0) << r.err;
    r = run({"train",
             "--model",
             "bpe",
             "--config",
             "tiny",
             "--tokenizer",
             dir_ + "/tok",
             "--data",
             dir_ + "/corpus",
             "--out",
             dir_ + "/ckpt",
             "--steps",
             "20",
             "--batch",
             "4",
             "--warmup",
             "2",
             "--eval-every",
             "10",
             "--threads",
             "1",
             "--peak-flops",
             "1e11"});
    ASSERT_EQ(r.code, 0) << r.err;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static Result run(const std::vector<std::string>& args) {
    const std::string out = dir_ + "/stdout", err = dir_ + "/stderr";
    return wait_for(spawn(args, out, err), out, err);
  }
  static void expect_bad(const std::vector<std::string>& args, const std::string& word) {
    Result r = run(args);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(r.err.rfind("bytelm: error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(word), std::string::npos) << "expected '" << word << "' in: " << r.err;
  }
  void SetUp() override {
    if (skip_) GTEST_SKIP() << "built without SentencePiece";
  }
  static std::string dir_;
  static bool skip_;
};
std::string BpeCli::dir_;
bool BpeCli::skip_ = false;

TEST_F(BpeCli, TokenizerStatsRoundTripsEveryFile) {
  Result r = run({"tokenizer", "stats", "--tokenizer", dir_ + "/tok", "--data", dir_ + "/corpus", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["round_trip_failures"], 0);
  EXPECT_EQ(j["vocab_size"], 512);
  EXPECT_GT(j["bytes_per_token"].get<double>(), 1.2);  // the binary file costs up to 4 tokens per byte
}

TEST_F(BpeCli, CheckpointIsSelfContained) {
  EXPECT_TRUE(fs::exists(dir_ + "/ckpt/tokenizer.model"));
  EXPECT_EQ(slurp(dir_ + "/ckpt/tokenizer.model"), slurp(dir_ + "/tok/tokenizer.model"));
  auto metrics = slurp(dir_ + "/ckpt/metrics.jsonl");
  EXPECT_NE(metrics.find("val_bpb"), std::string::npos);
}

TEST_F(BpeCli, EvalReportsBitsPerByteAndBytesPerToken) {
  Result r = run({"eval", "--ckpt", dir_ + "/ckpt", "--data", dir_ + "/corpus", "--json", "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["bytes"].get<int64_t>(), int64_t(slurp(dir_ + "/corpus/a.txt").size()) + 3000);
  const double bpb = j["bpb"], bpt = j["bytes_per_token"], npt = j["nats_per_token"];
  EXPECT_GT(bpb, 0.5);
  EXPECT_LT(bpb, 9.0);
  // bpb = nats per token x tokens per byte / ln 2.
  EXPECT_NEAR(bpb, npt / bpt / std::log(2.0), 1e-6 * bpb);
  EXPECT_EQ(j["tokens"].get<int64_t>(), int64_t(std::llround(double(j["bytes"].get<int64_t>()) / bpt)));
  // Sliding windows over tokens (the byte models' protocol): every token scored once, with more context.
  r = run({"eval", "--ckpt", dir_ + "/ckpt", "--data", dir_ + "/corpus", "--json", "--threads", "1", "--stride", "8"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto slid = nlohmann::json::parse(r.out);
  EXPECT_EQ(slid["tokens"], j["tokens"]);
  EXPECT_NE(slid["bpb"].get<double>(), bpb);
  EXPECT_NEAR(slid["bpb"].get<double>(), bpb, 0.5);
  r = run({"eval", "--ckpt", dir_ + "/ckpt", "--split", "val", "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("bytes per token"), std::string::npos) << r.out;
}

TEST_F(BpeCli, InfoReportsFlopsPerTokenAndPerByte) {
  Result r = run({"info", "--ckpt", dir_ + "/ckpt", "--data", dir_ + "/corpus", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["bytes_per_token_measured"].get<bool>());
  EXPECT_NEAR(j["forward_flops_per_byte"].get<double>(),
              j["forward_flops_per_token"].get<double>() / j["bytes_per_token"].get<double>(), 1.0);
  r = run({"info", "--config", "bpe_demo", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(nlohmann::json::parse(r.out)["bytes_per_token_measured"].get<bool>());
}

TEST_F(BpeCli, GenerateStreamsExactlyMaxBytes) {
  Result r = run({"generate", "--ckpt", dir_ + "/ckpt", "--prompt", "ab", "--max-bytes", "37", "--seed", "3"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.size(), 37u);
  write(dir_ + "/prompts.txt", "one\ntwo\n");
  r = run({"generate", "--ckpt", dir_ + "/ckpt", "--prompts-file", dir_ + "/prompts.txt", "--max-bytes", "9"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2);  // a JSON line per prompt
}

const char* kOwnConfig = R"({"model": "bpe", "context": 16, "vocab_size": 400, "layers": 1, "width": 32, "heads": 2})";

TEST_F(BpeCli, TrainsItsOwnTokenizerWhenNoneIsGiven) {
  write(dir_ + "/own.json", kOwnConfig);
  Result r = run({"train", "--model", "bpe", "--config", dir_ + "/own.json", "--tokenizer-type", "unigram", "--data",
                  dir_ + "/corpus", "--out", dir_ + "/own", "--steps", "2", "--batch", "2", "--threads", "1",
                  "--peak-flops", "1e11"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("trained a unigram tokenizer of 400 pieces"), std::string::npos) << r.err;
  r = run({"tokenizer", "stats", "--tokenizer", dir_ + "/own", "--data", dir_ + "/corpus"});
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST_F(BpeCli, BadTokenizersAreOneLineErrors) {
  fs::create_directories(dir_ + "/badtok");
  write(dir_ + "/badtok/tokenizer.model", "not a model");
  expect_bad({"train", "--model", "bpe", "--config", "tiny", "--tokenizer", dir_ + "/badtok", "--data",
              dir_ + "/corpus", "--out", dir_ + "/bad1", "--steps", "1"},
             "not a SentencePiece tokenizer model");
  expect_bad({"tokenizer", "stats", "--tokenizer", dir_ + "/nowhere.model", "--data", dir_ + "/corpus"}, "nowhere");
  // A checkpoint whose tokenizer is broken.
  fs::create_directories(dir_ + "/badckpt");
  for (const char* f : {"config.json", "model.safetensors"})
    fs::copy_file(dir_ + "/ckpt/" + f, dir_ + "/badckpt/" + f, fs::copy_options::overwrite_existing);
  write(dir_ + "/badckpt/tokenizer.model", "junk");
  expect_bad({"eval", "--ckpt", dir_ + "/badckpt", "--data", dir_ + "/corpus"}, "tokenizer.model");
  expect_bad({"generate", "--ckpt", dir_ + "/badckpt", "--prompt", "a"}, "tokenizer.model");
  // A tokenizer of another size than the config's vocabulary.
  write(dir_ + "/own.json", kOwnConfig);
  expect_bad({"train", "--model", "bpe", "--config", dir_ + "/own.json", "--tokenizer", dir_ + "/tok", "--data",
              dir_ + "/corpus", "--out", dir_ + "/bad2", "--steps", "1"},
             "vocab_size");
  expect_bad({"tokenizer", "train", "--data", dir_ + "/corpus", "--vocab", "100", "--out", dir_ + "/small"}, "--vocab");
  expect_bad({"train", "--model", "transformer", "--config", "tiny", "--tokenizer", dir_ + "/tok", "--data",
              dir_ + "/corpus", "--out", dir_ + "/bad3"},
             "--tokenizer is for --model bpe");
}

}  // namespace
}  // namespace bytelm_test
