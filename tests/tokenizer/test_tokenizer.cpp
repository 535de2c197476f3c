// test_tokenizer.cpp — the BPE baseline's tokenizer gives back the exact bytes: the escaped form of any
// bytes (byte_escape.h), and trained BPE / unigram tokenizers on random binary data, awkward text and the
// default corpus (a slice of every file, when data/corpus is present); bad tokenizer files are Errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "io/atomic_file.h"
#include "common/fuzz_cases.h"
#include "tokenizer/byte_escape.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace bytelm {
namespace {

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = char(rng() & 0xFF);
  return s;
}

// English-like text from a small word list, with newlines, digits, tabs and runs of spaces.
std::string sample_text(size_t n, uint32_t seed) {
  static const char* words[] = {"the",   "whale",  "ship", "captain", "sea",   "of",      "and",
                                "a",     "to",     "in",   "Ahab",    "said",  "we",      "union",
                                "state", "people", "1851", "great",   "white", "Congress"};
  std::mt19937 rng(seed);
  std::string s;
  while (s.size() < n) {
    s += words[rng() % 20];
    const uint32_t r = rng() % 40;
    s += r == 0 ? "\n" : r == 1 ? ".\n\n" : r == 2 ? "  " : r == 3 ? "\t" : r == 4 ? ", " : " ";
  }
  return s;
}

const std::vector<std::string>& edge_cases() {
  static const std::vector<std::string> cases{"",
                                              std::string(1, '\0'),
                                              std::string("a\0b", 3),
                                              "\xFF\xFE\x80",
                                              "\xC3",
                                              "\xE2\x96\x81 two\xE2\x96\x81\xE2\x96\x81",
                                              "\xF4\x8F\xBF\xBF\xF4\x8F\xBC\x80",
                                              "\xF4\x8F\xBC",
                                              "\xED\xA0\x80 surrogate",
                                              "\xEF\xBF\xBD replacement",
                                              "   leading and trailing   ",
                                              "\r\n\t\v\f",
                                              "\xEF\xAC\x81 \xE2\x91\xA0 \xC3\xA9 e\xCC\x81",
                                              "<s></s><unk><0x41>",
                                              "\xF0\x9F\x90\xB3 whale \xE6\x97\xA5\xE6\x9C\xAC"};
  return cases;
}

TEST(ByteEscape, RoundTripsAnyBytes) {
  for (const auto& s : edge_cases())
    EXPECT_EQ(unescape_bytes(escape_bytes(reinterpret_cast<const uint8_t*>(s.data()), int64_t(s.size()))), s);
  for (uint32_t seed = 0; seed < 20; ++seed) {
    const auto s = random_bytes(4096, seed);
    EXPECT_EQ(unescape_bytes(escape_bytes(reinterpret_cast<const uint8_t*>(s.data()), int64_t(s.size()))), s);
  }
  const std::string text = "plain text stays as it is \xC3\xA9";
  EXPECT_EQ(escape_bytes(reinterpret_cast<const uint8_t*>(text.data()), int64_t(text.size())), text);
}

TEST(ByteEscape, StreamsAcrossAnySplit) {
  const auto raw = random_bytes(2000, 7);
  const auto esc = escape_bytes(reinterpret_cast<const uint8_t*>(raw.data()), int64_t(raw.size()));
  std::mt19937 rng(3);
  StreamUnescaper un;
  std::string out;
  for (size_t i = 0; i < esc.size();) {
    const size_t n = std::min<size_t>(esc.size() - i, rng() % 6);
    out += un.push(esc.substr(i, n));
    i += n;
  }
  out += un.flush();
  EXPECT_EQ(out, raw);
}

const Tokenizer& bpe() {
  static const Tokenizer t = [] {
    TokenizerTrainOptions o;
    o.vocab = 400;
    return Tokenizer::train({sample_text(200000, 1)}, o);
  }();
  return t;
}

void expect_round_trip(const Tokenizer& t, const std::string& s) {
  const auto ids = t.encode(s);
  for (int32_t id : ids) ASSERT_TRUE(id >= 3 && id < t.vocab_size()) << id;  // never a special
  ASSERT_EQ(t.decode(ids), s);
}

TEST(Tokenizer, BpeRoundTripsTextBinaryAndEdgeCases) {
  if (!tokenizer_available()) GTEST_SKIP() << "built without SentencePiece";
  const Tokenizer& t = bpe();
  EXPECT_EQ(t.vocab_size(), 400);
  for (const auto& s : edge_cases()) expect_round_trip(t, s);
  expect_round_trip(t, random_bytes(65536, 11));
  const auto text = sample_text(50000, 2);
  expect_round_trip(t, text);
  // Subwords: clearly fewer tokens than bytes on text like the training text.
  EXPECT_GT(double(text.size()) / double(t.encode(text).size()), 2.0);
}

TEST(Tokenizer, ChunkedEncodingEqualsWholeLines) {
  if (!tokenizer_available()) GTEST_SKIP() << "built without SentencePiece";
  // encode() works in ~4 KB chunks cut at newlines and spaces; the tokens equal encoding each line alone.
  const Tokenizer& t = bpe();
  const auto text = sample_text(30000, 5);
  std::vector<int32_t> by_line;
  for (size_t from = 0; from < text.size();) {
    size_t to = text.find('\n', from);
    to = to == std::string::npos ? text.size() : to + 1;
    auto ids = t.encode(text.substr(from, to - from));
    by_line.insert(by_line.end(), ids.begin(), ids.end());
    from = to;
  }
  EXPECT_EQ(t.encode(text), by_line);
}

TEST(Tokenizer, UnigramRoundTrips) {
  if (!tokenizer_available()) GTEST_SKIP() << "built without SentencePiece";
  TokenizerTrainOptions o;
  o.type = "unigram";
  o.vocab = 350;
  const auto t = Tokenizer::train({sample_text(100000, 3)}, o);
  for (const auto& s : edge_cases()) expect_round_trip(t, s);
  expect_round_trip(t, random_bytes(20000, 12));
}

TEST(Tokenizer, SavesAndLoads) {
  if (!tokenizer_available()) GTEST_SKIP() << "built without SentencePiece";
  const auto dir = std::filesystem::temp_directory_path() / "bytelm_test_tokenizer";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / kTokenizerFile).string();
  bpe().save(path);
  const auto t = Tokenizer::load(path);
  const auto text = sample_text(5000, 9);
  EXPECT_EQ(t.encode(text), bpe().encode(text));
  std::filesystem::remove_all(dir);
}

TEST(Tokenizer, BadFilesAreErrors) {
  if (!tokenizer_available()) GTEST_SKIP() << "built without SentencePiece";
  const auto dir = std::filesystem::temp_directory_path() / "bytelm_test_tokenizer_bad";
  std::filesystem::create_directories(dir);
  const std::string junk = (dir / "junk.model").string();
  write_file_atomic(junk, "this is not a sentencepiece model");
  EXPECT_THROW(Tokenizer::load(junk), Error);
  EXPECT_THROW(Tokenizer::load((dir / "missing.model").string()), Error);
  EXPECT_THROW(Tokenizer::train({"abc"}, TokenizerTrainOptions{"bpe", 100}), Error);
  EXPECT_THROW(Tokenizer::train({"abc"}, TokenizerTrainOptions{"wordpiece", 400}), Error);
  std::filesystem::remove_all(dir);
}

// Mutated model files (bit flips, cuts, spliced bytes; seeded) either load or are refused with bytelm::Error;
// a mutated model that loads encodes and decodes without crashing.
TEST(Tokenizer, MutatedModelsLoadOrFailCleanly) {
  if (!tokenizer_available()) GTEST_SKIP() << "built without SentencePiece";
  const std::string good = bpe().serialized();
  std::mt19937 rng(77);
  auto at = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n)(rng); };
  int loaded = 0;
  for (int i = 0; i < bytelm::testing::fuzz_cases(150); ++i) {
    std::string m = good;
    if (i % 3 == 0) m.resize(at(m.size()));
    for (int k = 0; k < 1 + i % 4 && !m.empty(); ++k) m[at(m.size() - 1)] ^= char(1 << at(7));
    if (i % 5 == 0) m.insert(at(m.size()), good.substr(at(good.size() / 2), at(64)));
    try {
      const Tokenizer t = Tokenizer::from_serialized(m, "case " + std::to_string(i));
      t.decode(t.encode(sample_text(300, uint32_t(i))));
      ++loaded;
    } catch (const Error&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << "case " << i << ": not a bytelm::Error: " << e.what();
    }
  }
  RecordProperty("loaded", loaded);
}

// Every file of the default corpus (data/corpus, fetched by scripts/data/fetch-corpus.sh), an 8 KB slice of each
// to stay fast; `bytelm tokenizer stats --data data/corpus` checks the whole corpus.
TEST(Tokenizer, RoundTripsTheDefaultCorpus) {
  if (!tokenizer_available()) GTEST_SKIP() << "built without SentencePiece";
  const auto root = std::filesystem::path(BYTELM_SOURCE_DIR) / "data" / "corpus";
  if (!std::filesystem::is_directory(root)) GTEST_SKIP() << "no data/corpus";
  int files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    std::string s = read_file(e.path().string());
    s.resize(std::min<size_t>(s.size(), 8192));
    expect_round_trip(bpe(), s);
    ++files;
  }
  EXPECT_GT(files, 0);
}

}  // namespace
}  // namespace bytelm
