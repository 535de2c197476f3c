// test_corpus.cpp — corpus discovery order, per-file validation split, reads across file boundaries, and the
// stateless sampler (same (seed, step) -> same bytes; every window is a real slice of the split).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "data/corpus.h"
#include "util/error.h"

namespace bytelm {
namespace {

namespace fs = std::filesystem;

class CorpusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "bytelm_corpus_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& relative) const { return (fs::path(dir_) / relative).string(); }

  std::string write(const std::string& relative, const std::string& contents) const {
    fs::path p = fs::path(dir_) / relative;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << contents;
    return p.string();
  }

  // Distinct bytes per file, so any window pins down where it came from.
  void write_small_tree() const {
    write("root/b.txt", "mnop");
    write("root/a/2.txt", "kl");
    write("root/a/1.txt", "abcdefghij");
    write("root/c/d/e.txt", "qrstu");
    write("root/empty.txt", "");
    write("root/.hidden", "HIDDEN");
    write("root/.git/objects/x", "GIT");
  }

  static std::string read_all(const Corpus& corpus, Split split) {
    std::string out(static_cast<size_t>(corpus.size(split)), '\0');
    corpus.read(split, 0, corpus.size(split), reinterpret_cast<uint8_t*>(out.data()));
    return out;
  }

  static std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "<no error>";
  }

  std::string dir_;
};

TEST_F(CorpusTest, RecursesSortsAndSkipsHiddenAndEmpty) {
  write_small_tree();
  Corpus corpus({path("root")}, 0.0);
  EXPECT_EQ(corpus.num_files(), 4);
  EXPECT_EQ(corpus.size(Split::All), 21);
  EXPECT_EQ(read_all(corpus, Split::All), "abcdefghijklmnopqrstu");
  std::vector<Corpus::FileView> files = corpus.files(Split::All);
  ASSERT_EQ(files.size(), 4u);
  EXPECT_EQ(files[0].path, path("root/a/1.txt"));
  EXPECT_EQ(files[1].path, path("root/a/2.txt"));
  EXPECT_EQ(files[2].path, path("root/b.txt"));
  EXPECT_EQ(files[3].path, path("root/c/d/e.txt"));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(files[3].data), files[3].size), "qrstu");
}

TEST_F(CorpusTest, GivenPathsKeepTheirOrder) {
  write_small_tree();
  Corpus corpus({path("root/b.txt"), path("root/a")}, 0.0);
  EXPECT_EQ(corpus.num_files(), 3);
  EXPECT_EQ(read_all(corpus, Split::All), "mnopabcdefghijkl");
}

TEST_F(CorpusTest, ValidationIsTheTailOfEachFile) {
  write_small_tree();
  // ceil(0.25 * size) per file: 10 -> 3, 2 -> 1, 4 -> 1, 5 -> 2.
  Corpus corpus({path("root")}, 0.25);
  EXPECT_EQ(corpus.size(Split::Val), 7);
  EXPECT_EQ(corpus.size(Split::Train), 14);
  EXPECT_EQ(corpus.size(Split::All), 21);
  EXPECT_EQ(read_all(corpus, Split::Train), "abcdefgkmnoqrs");
  EXPECT_EQ(read_all(corpus, Split::Val), "hijlptu");

  std::vector<Corpus::FileView> val = corpus.files(Split::Val);
  ASSERT_EQ(val.size(), 4u);
  EXPECT_EQ(val[0].path, path("root/a/1.txt"));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(val[0].data), val[0].size), "hij");

  // A file whose every byte goes to validation has no training part, and that part is omitted.
  Corpus mostly_val({path("root/a/2.txt"), path("root/b.txt")}, 0.9);
  EXPECT_EQ(mostly_val.size(Split::Train), 0);
  EXPECT_TRUE(mostly_val.files(Split::Train).empty());
  EXPECT_EQ(mostly_val.files(Split::Val).size(), 2u);

  Corpus no_val({path("root")}, 0.0);
  EXPECT_EQ(no_val.size(Split::Val), 0);
  EXPECT_TRUE(no_val.files(Split::Val).empty());
}

TEST_F(CorpusTest, ReadsAcrossFileBoundaries) {
  write_small_tree();
  Corpus corpus({path("root")}, 0.25);
  auto read = [&](Split split, int64_t start, int64_t len) {
    std::string out(static_cast<size_t>(len), '\0');
    corpus.read(split, start, len, reinterpret_cast<uint8_t*>(out.data()));
    return out;
  };
  EXPECT_EQ(read(Split::All, 8, 6), "ijklmn");  // spans 1.txt, 2.txt, b.txt
  EXPECT_EQ(read(Split::All, 10, 2), "kl");     // exactly one whole file
  EXPECT_EQ(read(Split::All, 20, 1), "u");      // last byte
  EXPECT_EQ(read(Split::All, 21, 0), "");       // empty read at the end
  EXPECT_EQ(read(Split::Train, 6, 5), "gkmno");
  EXPECT_EQ(read(Split::Val, 2, 4), "jlpt");
  uint8_t byte;
  EXPECT_THROW(corpus.read(Split::All, 20, 2, &byte), Error);
  EXPECT_THROW(corpus.read(Split::All, -1, 1, &byte), Error);
  EXPECT_THROW(corpus.read(Split::All, 0, -1, &byte), Error);
  EXPECT_THROW(corpus.read(Split::Val, 7, 1, &byte), Error);
}

TEST_F(CorpusTest, SampleIsAPureFunctionOfSeedStepRow) {
  std::mt19937_64 rng(1);
  for (int f = 0; f < 3; ++f) {
    std::string text(40000 + 1000 * f, '\0');
    for (char& c : text) c = static_cast<char>(rng());
    write("big/part" + std::to_string(f) + ".bin", text);
  }
  Corpus corpus({path("big")}, 0.1);
  const int64_t batch = 16, len = 64;
  auto sample = [&](Split split, uint64_t seed, uint64_t step) {
    std::string out(static_cast<size_t>(batch * len), '\0');
    corpus.sample(split, seed, step, batch, len, reinterpret_cast<uint8_t*>(out.data()));
    return out;
  };
  const std::string a = sample(Split::Train, 7, 3);
  EXPECT_EQ(a, sample(Split::Train, 7, 3));
  EXPECT_NE(a, sample(Split::Train, 7, 4));
  EXPECT_NE(a, sample(Split::Train, 8, 3));

  // Row r of a batch does not depend on the batch size.
  std::string first_rows(static_cast<size_t>(4 * len), '\0');
  corpus.sample(Split::Train, 7, 3, 4, len, reinterpret_cast<uint8_t*>(first_rows.data()));
  EXPECT_EQ(first_rows, a.substr(0, first_rows.size()));

  // Every window is a slice of the split's stream (random bytes make a 64-byte match unique).
  for (Split split : {Split::Train, Split::Val}) {
    const std::string stream = read_all(corpus, split);
    const std::string windows = sample(split, 11, 5);
    std::set<size_t> starts;
    for (int64_t row = 0; row < batch; ++row) {
      size_t at = stream.find(windows.substr(static_cast<size_t>(row * len), static_cast<size_t>(len)));
      EXPECT_NE(at, std::string::npos) << "row " << row << " is not a slice of the split";
      starts.insert(at);
    }
    EXPECT_GT(starts.size(), static_cast<size_t>(batch / 2)) << "windows barely vary";
  }
}

TEST_F(CorpusTest, SampleCoversEveryOffsetIncludingAcrossFiles) {
  write_small_tree();
  Corpus corpus({path("root")}, 0.0);
  const std::string stream = read_all(corpus, Split::All);
  const int64_t len = 5;
  const int64_t positions = corpus.size(Split::All) - len + 1;  // 17
  std::set<size_t> seen;
  for (uint64_t step = 0; step < 200; ++step) {
    std::string out(static_cast<size_t>(8 * len), '\0');
    corpus.sample(Split::All, 3, step, 8, len, reinterpret_cast<uint8_t*>(out.data()));
    for (int row = 0; row < 8; ++row) {
      size_t at = stream.find(out.substr(static_cast<size_t>(row * len), static_cast<size_t>(len)));
      ASSERT_NE(at, std::string::npos);
      seen.insert(at);
    }
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(positions)) << "some offsets are never drawn";

  // A window as long as the split can only be the whole split.
  std::string whole(stream.size(), '\0');
  corpus.sample(Split::All, 1, 1, 1, corpus.size(Split::All), reinterpret_cast<uint8_t*>(whole.data()));
  EXPECT_EQ(whole, stream);
}

TEST_F(CorpusTest, Errors) {
  const std::string missing = path("missing");
  std::string message = error_of([&] { Corpus({missing}, 0.1); });
  EXPECT_NE(message.find(missing), std::string::npos) << message;

  fs::create_directories(path("empty_dir"));
  EXPECT_NE(error_of([&] { Corpus({path("empty_dir")}, 0.1); }).find("no bytes"), std::string::npos);

  write("only_empty/a.txt", "");
  write("only_empty/.hidden", "skipped");
  EXPECT_NE(error_of([&] { Corpus({path("only_empty")}, 0.1); }).find("no bytes"), std::string::npos);

  write("small/a.txt", "0123456789");
  EXPECT_THROW(Corpus({path("small")}, 1.0), Error);
  EXPECT_THROW(Corpus({path("small")}, -0.1), Error);
  EXPECT_THROW(Corpus({}, 0.1), Error);

  Corpus corpus({path("small")}, 0.2);  // train 8 bytes, val 2 bytes
  uint8_t out[16];
  EXPECT_EQ(error_of([&] { corpus.sample(Split::Val, 0, 0, 1, 3, out); }),
            "corpus split has 2 bytes, shorter than one window of 3 bytes");
  EXPECT_NO_THROW(corpus.sample(Split::Train, 0, 0, 2, 8, out));
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out), 16), "0123456701234567");
}

}  // namespace
}  // namespace bytelm
