// test_blt_commands.cpp — BLT through the binary: an entropy model, a BLT trained on its patches, cached and
// uncached generation, evaluation, `bytelm patch`, --bytes-per-patch calibration and its warning, info's
// parameter split, and the errors of that path.
#include "cli/cli_harness.h"

using namespace bytelm_test;
using json = nlohmann::json;

// BLT end to end: an entropy model, a BLT trained on its patches, cached and uncached generation,
// evaluation, `bytelm patch`, and the errors of that path.
TEST_F(Cli, BltEndToEnd) {
  const std::string corpus = dir_ + "/corpus", ent = dir_ + "/ent", blt = dir_ + "/blt";
  auto common = std::vector<std::string>{"--data",    corpus, "--steps",      "2",   "--batch", "2",
                                         "--threads", "1",    "--peak-flops", "1e11"};
  auto train = [&](std::vector<std::string> args) {
    args.insert(args.end(), common.begin(), common.end());
    return run(args);
  };
  Result r = train({"train", "--model", "entropy", "--config", "tiny", "--out", ent});
  ASSERT_EQ(r.code, 0) << r.err;
  r = train({"train", "--model", "blt", "--config", "tiny", "--entropy-model", ent, "--out", blt});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(slurp(blt + "/config.json"))["model_type"], "blt");

  Result cached = run({"generate", "--ckpt", blt, "--prompt", "call me", "--max-bytes", "40", "--temperature", "0"});
  Result uncached =
      run({"generate", "--ckpt", blt, "--prompt", "call me", "--max-bytes", "40", "--temperature", "0", "--no-cache"});
  ASSERT_EQ(cached.code, 0) << cached.err;
  ASSERT_EQ(uncached.code, 0) << uncached.err;
  EXPECT_EQ(cached.out, uncached.out);
  EXPECT_EQ(cached.out.size(), 40u);
  r = run({"eval", "--ckpt", blt, "--data", corpus, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_GT(nlohmann::json::parse(r.out)["bpb"].get<double>(), 0.0);

  r = run({"patch", "--entropy-model", ent, corpus + "/a.txt", "--json", "--bytes-per-patch", "4"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["entropies"].size(), 3000u);
  EXPECT_EQ(j["boundaries"][0], 0);
  EXPECT_NEAR(j["mean_bytes_per_patch"].get<double>(), 4.0, 1.0);
  r = run({"patch", "--entropy-model", blt, corpus + "/a.txt", "--max-patch-length", "6"});  // a BLT's own patcher
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find('|'), std::string::npos);
  EXPECT_NE(r.err.find("bytes per patch"), std::string::npos);

  // Errors: a missing or unfitting entropy model, and bad patching requests.
  expect_bad({"train", "--model", "blt", "--config", "tiny", "--data", corpus, "--out", dir_ + "/x"},
             "--entropy-model");
  expect_bad({"train", "--model", "blt", "--config", "tiny", "--data", corpus, "--out", dir_ + "/x", "--entropy-model",
              dir_ + "/ckpt"},
             "not an entropy model");
  r = run({"train", "--model", "entropy", "--config", BYTELM_SOURCE_DIR "/configs/ent_demo.json", "--out",
           dir_ + "/ent2", "--data", corpus, "--steps", "1", "--batch", "1", "--threads", "1", "--peak-flops", "1e11"});
  ASSERT_EQ(r.code, 0) << r.err;
  expect_bad({"train", "--model", "blt", "--config", "tiny", "--data", corpus, "--out", dir_ + "/x", "--entropy-model",
              dir_ + "/ent2"},
             "does not fit");
  EXPECT_FALSE(fs::exists(dir_ + "/x"));
  write(dir_ + "/empty.txt", "");
  expect_bad({"patch", "--entropy-model", ent, dir_ + "/empty.txt"}, "empty");
  expect_bad({"patch", "--entropy-model", ent, corpus + "/a.txt", "--threshold", "nan"}, "--threshold");
  expect_bad({"patch", "--entropy-model", ent, corpus + "/a.txt", "--bytes-per-patch", "0.5"}, "--bytes-per-patch");
  expect_bad({"patch", "--entropy-model", ent, corpus + "/a.txt", "--max-patch-length", "-1"}, "--max-patch-length");
  expect_bad({"patch", "--entropy-model", dir_ + "/ckpt", corpus + "/a.txt"}, "not an entropy model");
  expect_bad({"patch", corpus + "/a.txt"}, "--entropy-model");
}

// BLT: --bytes-per-patch calibrates the entropy threshold on the training data; a patcher that cuts almost
// every byte is warned about.
TEST_F(Cli, BltBytesPerPatch) {
  const std::string corpus = dir_ + "/corpus", ent = dir_ + "/ent_bpp";
  Result r = run({"train", "--model",   "entropy", "--config",     "tiny", "--data", corpus, "--out",
                  ent,     "--steps",   "40",      "--batch",      "4",    "--lr",   "0.01", "--warmup",
                  "2",     "--threads", "1",       "--peak-flops", "1e11"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto blt = [&](const std::string& out, std::vector<std::string> more) {
    std::vector<std::string> a{"train", "--model",      "blt", "--config", "tiny", "--entropy-model", ent, "--data",
                               corpus,  "--out",        out,   "--steps",  "1",    "--batch",         "2", "--threads",
                               "1",     "--peak-flops", "1e11"};
    a.insert(a.end(), more.begin(), more.end());
    return run(a);
  };
  r = blt(dir_ + "/blt_low", {"--bytes-per-patch", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("warning:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("almost byte-level"), std::string::npos) << r.err;

  r = blt(dir_ + "/blt_4", {"--bytes-per-patch", "4", "--warmup", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find("warning:"), std::string::npos) << r.err;
  const auto at = r.err.find("mean patch size ");
  ASSERT_NE(at, std::string::npos) << r.err;
  EXPECT_NEAR(std::stod(r.err.substr(at + 16)), 4.0, 1.5) << r.err;
  const double threshold = json::parse(slurp(dir_ + "/blt_4/config.json"))["patching_threshold"];
  const auto th = r.err.find("entropy threshold ");
  ASSERT_NE(th, std::string::npos) << r.err;
  EXPECT_NEAR(std::stod(r.err.substr(th + 18)), threshold, 1e-4) << r.err;  // the calibrated threshold is stored
  expect_bad({"train", "--model", "megabyte", "--config", "tiny", "--data", corpus, "--out", dir_ + "/x",
              "--bytes-per-patch", "4"},
             "--bytes-per-patch");

  // info shows BLT's parameters without and with the entropy model.
  r = run({"info", "--ckpt", dir_ + "/blt_4", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = json::parse(r.out);
  EXPECT_GT(j["entropy_model_params"].get<int64_t>(), 0);
  EXPECT_EQ(j["params"].get<int64_t>() + j["entropy_model_params"].get<int64_t>(),
            j["checkpoint_params"].get<int64_t>());
}
