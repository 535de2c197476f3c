// test_experiment.cpp — the pieces of src/experiment that need no training: plan checks and defaults, steps
// from a budget, the noise kinds, CUTE-like items (golden examples), compressor rows, held-out bytes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "data/corpus.h"
#include "common/fuzz_cases.h"
#include "experiment/extras.h"
#include "experiment/measure.h"
#include "experiment/plan.h"
#include "experiment/runner.h"
#include "util/error.h"

namespace bytelm::experiment {

using json = nlohmann::json;

json minimal_plan() {
  return json::parse(R"({"datasets": {"text": ["data/corpus"]},
    "runs": [{"name": "ent", "model": "entropy", "config": "ent_tiny", "data": "text", "budget": 1e9},
             {"name": "b", "model": "blt", "config": "blt_tiny", "data": "text", "budget": 2e9,
              "entropy_model": "ent", "bytes_per_patch": 4, "train": {"lr": 0.002}}]})");
}

TEST(ExperimentPlan, DefaultsAndOverrides) {
  Plan p = parse_plan(minimal_plan(), "plan");
  ASSERT_EQ(p.runs.size(), 2u);
  EXPECT_EQ(p.runs[0].train.lr, 1e-3);
  EXPECT_EQ(p.runs[1].train.lr, 0.002);
  EXPECT_EQ(p.runs[1].train.batch, 8);
  EXPECT_EQ(p.runs[1].seed, 1234);
  EXPECT_EQ(p.eval.stride_fraction, 0.5);
  EXPECT_FALSE(p.robustness.enabled);
  make_quick(p);
  EXPECT_DOUBLE_EQ(p.runs[1].budget, 2e7);
  EXPECT_DOUBLE_EQ(p.runs[1].entry["budget"].get<double>(), 2e7);  // a quick run is a different run
}

TEST(ExperimentPlan, Errors) {
  auto bad = [](const std::function<void(json&)>& edit, const std::string& word) {
    json j = minimal_plan();
    edit(j);
    try {
      parse_plan(j, "plan");
      ADD_FAILURE() << "accepted: " << j.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
      EXPECT_EQ(e.code, 2);
    }
  };
  bad([](json& j) { j["runs"][0]["budget"] = -1; }, "budget");
  bad([](json& j) { j["runs"][1]["name"] = "ent"; }, "two runs");
  bad([](json& j) { j["runs"][0]["name"] = "../x"; }, "name");
  bad([](json& j) { j["runs"][0]["model"] = "lstm"; }, "model");
  bad([](json& j) { j["runs"][1]["entropy_model"] = "b"; }, "entropy_model");
  bad([](json& j) { j["runs"][0]["bytes_per_patch"] = 3; }, "for blt runs");
  bad([](json& j) { j["eval"] = {{"stride_fraction", 0}}; }, "stride_fraction");
  bad([](json& j) { j["robustness"] = {{"data", "text"}, {"noise", {"shout"}}}; }, "shout");
  bad([](json& j) { j["runs"][0]["train"] = {{"batchsize", 2}}; }, "batchsize");
}

// Mutated plans (a shipped plan's JSON with bytes flipped, cut or spliced; seeded) either parse or are refused
// with bytelm::Error naming the file.
TEST(ExperimentPlan, MutatedPlansParseOrFailCleanly) {
  const std::string path = std::string(BYTELM_SOURCE_DIR) + "/configs/experiments/quick.json";
  std::ifstream in(path);
  const std::string good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(good.empty());
  const std::string file = (std::filesystem::temp_directory_path() / "bytelm_mutated_plan.json").string();
  std::mt19937 rng(99);
  auto at = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n)(rng); };
  for (int i = 0; i < bytelm::testing::fuzz_cases(200); ++i) {
    std::string m = good;
    if (i % 4 == 0) m.resize(at(m.size()));
    for (int k = 0; k < 1 + i % 3 && !m.empty(); ++k) m[at(m.size() - 1)] ^= char(1 << at(7));
    if (i % 5 == 0) m.insert(at(m.size()), good.substr(at(good.size() / 2), at(80)));
    std::ofstream(file, std::ios::binary) << m;
    try {
      bytelm::experiment::load_plan(file);
    } catch (const bytelm::Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind(file, 0), 0u) << "case " << i << ": " << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "case " << i << ": not a bytelm::Error: " << e.what();
    }
  }
  std::filesystem::remove(file);
}

TEST(ExperimentPlan, StepsForBudget) {
  EXPECT_EQ(steps_for_budget(1e12, 1e9), 1000);
  EXPECT_EQ(steps_for_budget(1e12, 3e9), 333);
  EXPECT_EQ(steps_for_budget(1, 1e9), 2);  // at least two steps
  EXPECT_THROW(steps_for_budget(1e12, 0), Error);
}

TEST(ExperimentNoise, Kinds) {
  const std::string text = "The whale, the white whale! Call me Ishmael.";
  EXPECT_EQ(add_noise(text, "uppercase", 1), "THE WHALE, THE WHITE WHALE! CALL ME ISHMAEL.");
  EXPECT_EQ(add_noise("ab cd", "antspeak", 1), "A B C D ");
  EXPECT_EQ(add_noise(text, "randomcase", 7), add_noise(text, "randomcase", 7));  // deterministic
  std::string big(100000, 'x');
  const double kept = double(add_noise(big, "drop", 3).size()) / double(big.size());
  EXPECT_NEAR(kept, 0.9, 0.01);
  const double grown = double(add_noise(big, "repeat", 3).size()) / double(big.size());
  EXPECT_NEAR(grown, 1.4, 0.02);  // 20% of characters repeated 1-3 more times: +0.2 x 2
  std::string rc = add_noise(std::string(10000, 'a'), "randomcase", 5);
  EXPECT_NEAR(double(std::count(rc.begin(), rc.end(), 'A')) / 10000.0, 0.5, 0.03);
  EXPECT_THROW(add_noise(text, "shout", 1), Error);
}

TEST(ExperimentCute, Items) {
  std::mt19937_64 rng(1);
  EXPECT_EQ(cute_item("spell", "apple", rng).answer, " a p p l e");
  EXPECT_EQ(cute_item("reverse", "apple", rng).answer, " elppa");
  for (int i = 0; i < 50; ++i) {
    const CuteItem d = cute_item("delete", "banana", rng);  // "del X banana =" -> banana without X
    const char x = d.question[4];
    std::string want = "banana";
    want.erase(std::remove(want.begin(), want.end(), x), want.end());
    EXPECT_EQ(d.answer, " " + want);
    const CuteItem s = cute_item("substitute", "banana", rng);  // "sub X Y banana ="
    std::string sub = "banana";
    std::replace(sub.begin(), sub.end(), s.question[4], s.question[6]);
    EXPECT_EQ(s.answer, " " + sub);
    const CuteItem in = cute_item("insert", "banana", rng);  // "ins Y X banana =": Y after the first X
    std::string ins = "banana";
    ins.insert(ins.find(in.question[6]) + 1, 1, in.question[4]);
    EXPECT_EQ(in.answer, " " + ins);
    const CuteItem sw = cute_item("swap", "banana", rng);
    std::string a = sw.answer.substr(1), b = "banana";
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    EXPECT_EQ(a, b);  // a permutation
  }
  // Test words never appear among the examples.
  std::vector<std::string> words;
  for (int i = 0; i < 40; ++i) words.push_back("w" + std::string(3, char('a' + i % 26)) + char('a' + i / 26));
  auto items = cute_prompts(words, "reverse", 10, 3, 9);
  ASSERT_EQ(items.size(), 10u);
  for (const auto& [q, a] : items) {
    const std::string test_word = q.substr(q.rfind("reverse ") + 8, 5);
    EXPECT_EQ(std::count(q.begin(), q.end(), '\n'), 3);
    EXPECT_EQ(q.find(test_word), q.rfind("reverse ") + 8) << q;
    EXPECT_EQ(a.back(), '\n');
  }
}

TEST(ExperimentCompressors, KnownData) {
  std::string zeros(100000, '\0'), noise(100000, '\0');
  std::mt19937 rng(3);
  for (auto& c : noise) c = char(rng());
  EXPECT_LT(compressed_bpb("gzip -9", zeros), 0.05);
  EXPECT_GT(compressed_bpb("xz -9e", noise), 7.99);
  EXPECT_GT(compressed_bpb("bzip2 -9", noise), 7.99);
  EXPECT_THROW(compressed_bpb("no-such-compressor-xyz", zeros), Error);
}

TEST(ExperimentHeldOut, ProportionalHeads) {
  namespace fs = std::filesystem;
  const std::string d = (fs::temp_directory_path() / ("bytelm_heldout_" + std::to_string(getpid()))).string();
  fs::create_directories(d);
  std::ofstream(d + "/a.txt") << std::string(1000, 'a');
  std::ofstream(d + "/b.txt") << std::string(3000, 'b');
  Corpus c({d}, 0.1);  // held out: 100 a, 300 b
  EXPECT_EQ(held_out_bytes(c, 0), std::string(100, 'a') + std::string(300, 'b'));
  EXPECT_EQ(held_out_bytes(c, 200), std::string(50, 'a') + std::string(150, 'b'));
  fs::remove_all(d);
}

}  // namespace bytelm::experiment
