// test_hnet_commands.cpp — H-Net through the binary: training with resume, cached and uncached generation,
// evaluation with the realised chunk size, `info --data`, `bytelm patch --ckpt` and the errors of that path.
#include "cli/cli_harness.h"

using namespace bytelm_test;
using json = nlohmann::json;

TEST_F(Cli, HnetEndToEnd) {
  const std::string corpus = dir_ + "/corpus", out = dir_ + "/hnet";
  auto train = [&](const std::string& steps, std::vector<std::string> more) {
    std::vector<std::string> a{"train", "--model",  "hnet", "--config",     "tiny", "--data",      corpus, "--out",
                               out,     "--steps",  steps,  "--batch",      "2",    "--threads",   "1",    "--lr",
                               "3e-3",  "--warmup", "1",    "--peak-flops", "1e11", "--log-every", "2"};
    a.insert(a.end(), more.begin(), more.end());
    return run(a);
  };
  Result r = train("4", {});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("mean patch size"), std::string::npos) << r.err;
  r = run({"train", "--out", out, "--resume", "--steps", "6"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(slurp(out + "/trainer.json"))["step"], 6);
  // Every logged interval records the bytes per chunk it realised.
  const std::string metrics = slurp(out + "/metrics.jsonl");
  EXPECT_NE(metrics.find("bytes_per_patch"), std::string::npos) << metrics;

  Result cached = run({"generate", "--ckpt", out, "--prompt", "call me", "--max-bytes", "80", "--temperature", "0"});
  Result uncached =
      run({"generate", "--ckpt", out, "--prompt", "call me", "--max-bytes", "80", "--temperature", "0", "--no-cache"});
  ASSERT_EQ(cached.code, 0) << cached.err;
  EXPECT_EQ(cached.out, uncached.out);
  EXPECT_EQ(cached.out.size(), 80u);  // past the tiny context of 64

  r = run({"eval", "--ckpt", out, "--data", corpus, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = json::parse(r.out);
  EXPECT_GT(j["bpb"].get<double>(), 0.0);
  EXPECT_GT(j["mean_patch_size"].get<double>(), 1.0);
  r = run({"info", "--ckpt", out, "--data", corpus});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("learned chunks"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(measured)"), std::string::npos) << r.out;

  r = run({"patch", "--ckpt", out, corpus + "/a.txt", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  j = json::parse(r.out);
  EXPECT_EQ(j["boundaries"][0], 0);
  EXPECT_EQ(j["bytes"], 3000);
  EXPECT_GE(j["boundaries"].size(), 3000u / 64);  // at least one chunk per window of the context
  r = run({"patch", "--ckpt", out, corpus + "/a.txt"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find('|'), std::string::npos);
  EXPECT_NE(r.err.find("bytes per chunk"), std::string::npos) << r.err;

  expect_bad({"patch", "--ckpt", out, corpus + "/a.txt", "--stage", "1"}, "--stage");
  expect_bad({"patch", "--ckpt", dir_ + "/ckpt", corpus + "/a.txt"}, "does not learn its chunks");
  expect_bad({"patch", "--ckpt", out, "--entropy-model", out, corpus + "/a.txt"}, "one of them");
  expect_bad({"patch", corpus + "/a.txt"}, "--entropy-model");
}
