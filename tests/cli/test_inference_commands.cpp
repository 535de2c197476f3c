// test_inference_commands.cpp — eval, generate and info as a user meets them: eval --split val reproduces
// training's validation bpb and reports nats; generate's --stop takes C escapes and repeats, batched JSON
// keeps every byte (base64), --min-p and --repetition-penalty change sampling as documented.
#include <cmath>

#include "cli/cli_harness.h"

using namespace bytelm_test;
using json = nlohmann::json;

namespace {

std::string hex_escape(char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\x%02x", unsigned(uint8_t(c)));
  return buf;
}

std::string base64_decode(const std::string& s) {
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    if (c == '=') break;
    acc = acc << 6 | uint32_t(alphabet.find(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char((acc >> bits) & 0xff));
    }
  }
  return out;
}

}  // namespace

TEST_F(Cli, EvalSplitValReproducesTrainingsValidation) {
  // The fixture's run validated at its last step (2) with 4 batches of 2 windows.
  std::string last_val;
  std::istringstream lines(slurp(dir_ + "/ckpt/metrics.jsonl"));
  for (std::string line; std::getline(lines, line);)
    if (line.find("val_bpb") != std::string::npos) last_val = line;
  ASSERT_FALSE(last_val.empty());
  const double val_bpb = json::parse(last_val)["val_bpb"];

  Result r =
      run({"eval", "--ckpt", dir_ + "/ckpt", "--split", "val", "--json", "--threads", "1"});  // data from the run
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = json::parse(r.out);
  EXPECT_NEAR(j["run_val_bpb"].get<double>(), val_bpb, 1e-5 * val_bpb);
  EXPECT_EQ(j["bytes"], 150);  // the last 5% of the 3000-byte file
  EXPECT_NEAR(j["nats_per_byte"].get<double>(), j["bpb"].get<double>() * std::log(2.0), 1e-9);

  r = run({"eval", "--ckpt", dir_ + "/ckpt", "--split", "train", "--json", "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["bytes"], 2850);
  r = run({"eval", "--ckpt", dir_ + "/ckpt", "--data", dir_ + "/corpus", "--split", "val", "--val-fraction", "0.5",
           "--json", "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["bytes"], 1500);
  expect_bad({"eval", "--ckpt", dir_ + "/ckpt", "--split", "test"}, "--split");
  expect_bad({"eval", "--ckpt", dir_ + "/ckpt"}, "--data");
}

TEST_F(Cli, GenerateStopsTakeEscapesAndRepeat) {
  auto gen = [&](std::vector<std::string> more) {
    std::vector<std::string> a{"generate",    "--ckpt", dir_ + "/ckpt",  "--prompt", "call",
                               "--max-bytes", "60",     "--temperature", "0"};
    a.insert(a.end(), more.begin(), more.end());
    return run(a);
  };
  Result full = gen({});
  ASSERT_EQ(full.code, 0) << full.err;
  ASSERT_EQ(full.out.size(), 60u);
  const char late = full.out[20], early = full.out[6];
  Result one = gen({"--stop", hex_escape(late)});
  ASSERT_EQ(one.code, 0) << one.err;
  EXPECT_EQ(one.out, full.out.substr(0, full.out.find(late) + 1));
  Result two = gen({"--stop", hex_escape(late), "--stop", hex_escape(early)});
  ASSERT_EQ(two.code, 0) << two.err;
  EXPECT_EQ(two.out, full.out.substr(0, std::min(full.out.find(late), full.out.find(early)) + 1));
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--stop", "\\q"}, "--stop");
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--stop", "\\x"}, "--stop");
}

TEST_F(Cli, BatchedJsonKeepsEveryByte) {
  write(dir_ + "/two_prompts.txt", "call\nme\n");
  Result r = run({"generate", "--ckpt", dir_ + "/ckpt", "--prompts-file", dir_ + "/two_prompts.txt", "--max-bytes",
                  "50", "--seed", "11", "--temperature", "3"});  // hot sampling: bytes that are not UTF-8
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  int rows = 0;
  for (; std::getline(lines, line); ++rows) {
    auto j = json::parse(line);
    Result alone = run({"generate", "--ckpt", dir_ + "/ckpt", "--prompt", j["prompt"], "--max-bytes", "50", "--seed",
                        std::to_string(11 + rows), "--temperature", "3"});
    ASSERT_EQ(alone.code, 0) << alone.err;
    EXPECT_EQ(base64_decode(j["output_base64"]), alone.out) << line;
  }
  EXPECT_EQ(rows, 2);
}

// What the filters do is tested on hand-made logits (test_sampling); here: the flags reach the sampler.
TEST_F(Cli, MinPAndRepetitionPenaltyReachTheSampler) {
  auto gen = [&](std::vector<std::string> more) {
    std::vector<std::string> a{"generate",    "--ckpt", dir_ + "/ckpt",  "--prompt", "call me",
                               "--max-bytes", "40",     "--temperature", "0"};
    a.insert(a.end(), more.begin(), more.end());
    Result r = run(a);
    EXPECT_EQ(r.code, 0) << r.err;
    return r.out;
  };
  const std::string greedy = gen({});
  EXPECT_EQ(greedy.size(), 40u);
  EXPECT_EQ(gen({"--repetition-penalty", "1"}), greedy);
  // Greedy decoding penalised hard on everything it has seen cannot repeat a byte within the window
  // while unseen bytes remain with positive logits; with this barely trained model, it does change the output.
  EXPECT_NE(gen({"--repetition-penalty", "1000", "--repetition-window", "4"}), greedy);
  EXPECT_EQ(gen({"--min-p", "0.5", "--seed", "3"}).size(), 40u);
}

TEST_F(Cli, EvalGenerateInfoWork) {
  Result r = run({"eval", "--ckpt", dir_ + "/ckpt", "--data", dir_ + "/corpus", "--json", "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["bytes"].get<int64_t>(), 3000);
  EXPECT_GT(j["bpb"].get<double>(), 0.0);
  r = run({"generate", "--ckpt", dir_ + "/ckpt", "--prompt", "call", "--max-bytes", "100", "--seed", "3"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.size(), 100u);  // raw bytes, any values
  Result again = run({"generate", "--ckpt", dir_ + "/ckpt", "--prompt", "call", "--max-bytes", "100", "--seed", "3"});
  EXPECT_EQ(r.out, again.out);  // seeded sampling is reproducible
  // Generation longer than the context (64) slides the window instead of failing.
  r = run({"generate", "--ckpt", dir_ + "/ckpt", "--max-bytes", "200", "--temperature", "0"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.size(), 200u);
  r = run({"info", "--ckpt", dir_ + "/ckpt", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["parts"].size(), 2u);
  r = run({"info", "--config", "tiny", "--model", "transformer"});
  EXPECT_EQ(r.code, 0) << r.err;
}

// eval --strided (MEGABYTE's strided inference) runs, says so in its JSON, and takes --stride; bad values are
// one-line errors; info of a variant config lists its levels.
TEST_F(Cli, EvalStridedAndVariantInfo) {
  Result r =
      run({"eval", "--ckpt", dir_ + "/ckpt", "--data", dir_ + "/corpus", "--json", "--threads", "1", "--strided"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["strided"], "early");
  EXPECT_EQ(j["bytes"].get<int64_t>(), 3000);
  r = run({"eval", "--ckpt", dir_ + "/ckpt", "--data", dir_ + "/corpus", "--json", "--strided", "--stride", "32",
           "--strided-keep", "late"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["strided"], "late");
  expect_bad({"eval", "--ckpt", dir_ + "/ckpt", "--data", dir_ + "/corpus", "--strided-keep", "middle"},
             "strided-keep");
  expect_bad({"eval", "--ckpt", dir_ + "/ckpt", "--data", dir_ + "/corpus", "--strided", "--stride", "65"}, "--stride");
  r = run({"info", "--config", "mb_3level_demo", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["parts"].size(), 3u);
  EXPECT_EQ(j["parts"][1]["part"], "level1");
  EXPECT_EQ(j["config"]["levels"][0]["patch_size"], 8);
}

TEST_F(Cli, PromptErrors) {
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--prompt", std::string(64, 'a')}, "context");
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--prompt-file", dir_ + "/no-such-prompt"}, "no-such-prompt");
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--prompt", "a", "--prompt-file", dir_ + "/corpus/a.txt"},
             "excludes");
}

// Many prompts from a file, decoded in batches: one JSON line per prompt, in order, each equal to the
// same prompt generated alone (greedy).
TEST_F(Cli, PromptsFileGivesJsonLines) {
  write(dir_ + "/prompts.txt", "call\n\nme ishmael\nx");
  Result r = run({"generate", "--ckpt", dir_ + "/ckpt", "--prompts-file", dir_ + "/prompts.txt", "--batch", "3",
                  "--max-bytes", "30", "--temperature", "0"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  std::vector<nlohmann::json> rows;
  while (std::getline(lines, line)) rows.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rows.size(), 4u);
  const std::vector<std::string> prompts{"call", "", "me ishmael", "x"};
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i]["index"].get<size_t>(), i);
    EXPECT_EQ(rows[i]["prompt"].get<std::string>(), prompts[i]);
    Result alone =
        run({"generate", "--ckpt", dir_ + "/ckpt", "--prompt", prompts[i], "--max-bytes", "30", "--temperature", "0"});
    // JSON shows bytes that are not UTF-8 as U+FFFD; compare only when the output is ASCII.
    bool ascii = std::all_of(alone.out.begin(), alone.out.end(), [](char c) { return c > 0 && c < 127; });
    if (ascii) EXPECT_EQ(rows[i]["output"].get<std::string>(), alone.out) << i;
  }
  // With a draft (the model itself) the batch's speculative rounds give the same lines (greedy).
  Result drafted = run({"generate", "--ckpt", dir_ + "/ckpt", "--prompts-file", dir_ + "/prompts.txt", "--batch", "3",
                        "--max-bytes", "30", "--temperature", "0", "--draft", dir_ + "/ckpt", "--draft-p-min", "0"});
  ASSERT_EQ(drafted.code, 0) << drafted.err;
  EXPECT_EQ(drafted.out, r.out);
  EXPECT_NE(drafted.err.find("draft acceptance rate = 1.000"), std::string::npos) << drafted.err;  // itself
  // A stop string inside a round ends the line there, as without the draft.
  const std::vector<std::string> stop_at_e{"generate",
                                           "--ckpt",
                                           dir_ + "/ckpt",
                                           "--prompts-file",
                                           dir_ + "/prompts.txt",
                                           "--max-bytes",
                                           "30",
                                           "--temperature",
                                           "0",
                                           "--stop",
                                           "e"};
  std::vector<std::string> stop_drafted = stop_at_e;
  stop_drafted.insert(stop_drafted.end(), {"--draft", dir_ + "/ckpt", "--draft-p-min", "0"});
  EXPECT_EQ(run(stop_drafted).out, run(stop_at_e).out);
  const std::vector<std::string> one{
      "generate",      "--ckpt", dir_ + "/ckpt",  "--prompt", "call", "--max-bytes", "30",
      "--temperature", "0",      "--draft-p-min", "0"};
  std::vector<std::string> with_draft = one;
  with_draft.insert(with_draft.end(), {"--draft", dir_ + "/ckpt"});
  Result alone = run(with_draft);
  ASSERT_EQ(alone.code, 0) << alone.err;
  std::vector<std::string> plain(one.begin(), one.end() - 2);
  EXPECT_EQ(alone.out, run(plain).out);
  EXPECT_NE(alone.err.find("draft acceptance rate"), std::string::npos) << alone.err;
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--prompts-file", dir_ + "/prompts.txt", "--draft",
              dir_ + "/no-such-draft"},
             "no-such-draft");
  write(dir_ + "/empty_prompts.txt", "");
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--prompts-file", dir_ + "/empty_prompts.txt"}, "no prompts");
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--prompts-file", dir_ + "/prompts.txt", "--batch", "0"},
             "--batch");
}
