// test_cli.cpp — the bytelm binary end to end: --help, the happy path, every bad-input case (one-line
// error, exit code 2, no file changed) and Ctrl-C during training (checkpoint, exit 130, resumable).
#include "cli/cli_harness.h"

using namespace bytelm_test;

namespace {
// safetensors bytes from a header JSON and a data region.
std::string safetensors(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  std::memcpy(&out[0], &n, 8);
  return out + header + data;
}
}  // namespace

TEST_F(Cli, HelpListsEveryOptionWithDefaults) {
  for (auto [sub, option] : std::vector<std::pair<std::string, std::string>>{
           {"train", "--warmup"}, {"eval", "--batch"}, {"generate", "--top-k"}, {"info", "--json"}, {"bench", "--gen-bytes"}}) {
    Result r = run({sub, "--help"});
    EXPECT_EQ(r.code, 0) << sub;
    EXPECT_NE(r.out.find(option), std::string::npos) << sub << ": " << r.out;
  }
  Result r = run({"train", "--help"});
  EXPECT_NE(r.out.find("--steps INT=1000"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--lr FLOAT=0.001"), std::string::npos) << r.out;
  EXPECT_EQ(run({"--help"}).code, 0);
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
  EXPECT_EQ(r.out, again.out);    // seeded sampling is reproducible
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

TEST_F(Cli, BadFlagsAndValues) {
  expect_bad({"train", "--bogus"}, "bogus");
  expect_bad({"frobnicate"}, "frobnicate");
  expect_bad({"train", "--model", "rnn", "--config", "tiny", "--data", dir_ + "/corpus", "--out", dir_ + "/x"}, "rnn");
  expect_bad({"train", "--model", "megabyte", "--config", "tiny", "--data", dir_ + "/corpus", "--out", dir_ + "/x",
              "--steps", "0"}, "--steps");
  expect_bad({"train", "--model", "megabyte", "--config", "tiny", "--data", dir_ + "/corpus", "--out", dir_ + "/x",
              "--steps", "ten"}, "steps");
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--top-p", "1.5"}, "--top-p");
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--temperature", "-1"}, "--temperature");
  expect_bad({"eval", "--ckpt", dir_ + "/ckpt", "--data", dir_ + "/corpus", "--device", "tpu"}, "tpu");
  expect_bad({"info"}, "--ckpt");
  expect_bad({"eval", "--data", dir_ + "/corpus"}, "--ckpt");
  expect_bad({"train", "--model", "megabyte", "--config", "tiny", "--data", dir_ + "/corpus"}, "--out");
  EXPECT_FALSE(fs::exists(dir_ + "/x"));
}

TEST_F(Cli, BadData) {
  auto train = [&](const std::string& data, const std::string& config = "tiny") {
    return std::vector<std::string>{"train", "--model", "megabyte", "--config", config, "--data", data,
                                    "--out", dir_ + "/x", "--threads", "1"};
  };
  expect_bad(train(dir_ + "/no-such-file"), "no-such-file");
  fs::create_directories(dir_ + "/empty");
  expect_bad(train(dir_ + "/empty"), "empty");
  write(dir_ + "/short.txt", "only a few bytes");
  expect_bad(train(dir_ + "/short.txt"), "shorter than one window");
  write(dir_ + "/unreadable.txt", "secret");
  fs::permissions(dir_ + "/unreadable.txt", fs::perms::none);
  if (getuid() != 0) expect_bad(train(dir_ + "/unreadable.txt"), "unreadable");  // root reads anything
  expect_bad({"eval", "--ckpt", dir_ + "/ckpt", "--data", dir_ + "/no-such-file"}, "no-such-file");
  EXPECT_FALSE(fs::exists(dir_ + "/x"));
}

TEST_F(Cli, BadConfigs) {
  auto train = [&](const std::string& config) {
    return std::vector<std::string>{"train", "--model", "megabyte", "--config", config, "--data", dir_ + "/corpus",
                                    "--out", dir_ + "/x"};
  };
  write(dir_ + "/c1.json", R"({"model": "megabyte", "context": 66, "patch_size": 4,
    "global": {"layers": 1, "width": 64, "heads": 2}, "local": {"layers": 1, "width": 32, "heads": 2}})");
  expect_bad(train(dir_ + "/c1.json"), "multiple of patch_size");
  write(dir_ + "/c2.json", R"({"model": "megabyte", "context": 64, "patch_size": 4, "dropout": 0.1,
    "global": {"layers": 1, "width": 64, "heads": 2}, "local": {"layers": 1, "width": 32, "heads": 2}})");
  expect_bad(train(dir_ + "/c2.json"), "unknown key 'dropout'");
  write(dir_ + "/c3.json", R"({"model": "megabyte", "context": 64, "patch_size": 4,
    "global": {"layers": 1, "width": 64, "heads": 3}, "local": {"layers": 1, "width": 32, "heads": 2}})");
  expect_bad(train(dir_ + "/c3.json"), "does not divide");
  write(dir_ + "/c4.json", "{\"model\": ");
  expect_bad(train(dir_ + "/c4.json"), "invalid JSON");
  expect_bad(train("no-such-preset"), "no-such-preset");
  expect_bad({"train", "--model", "transformer", "--config", BYTELM_SOURCE_DIR "/configs/mb_tiny.json", "--data",
              dir_ + "/corpus", "--out", dir_ + "/x"}, "not 'transformer'");
  EXPECT_FALSE(fs::exists(dir_ + "/x"));
}

TEST_F(Cli, BadCheckpoints) {
  fs::create_directories(dir_ + "/noconfig");
  expect_bad({"eval", "--ckpt", dir_ + "/noconfig", "--data", dir_ + "/corpus"}, "config.json");
  expect_bad({"generate", "--ckpt", dir_ + "/no-such-dir"}, "no-such-dir");
  const std::string good = slurp(dir_ + "/ckpt/model.safetensors");
  struct Case { std::string name, bytes, word; };
  std::vector<Case> cases{
      {"truncated", good.substr(0, good.size() - 100), "safetensors"},
      {"header_beyond", safetensors(std::string(20, ' '), "").substr(0, 12), "header"},
      {"bad_json", safetensors("{\"a\": [1, 2", ""), "JSON"},
      {"offsets", safetensors(R"({"global_pad":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}})", std::string(8, '\0')), "offset"},
      {"dtype", safetensors(R"({"global_pad":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0')), "dtype"},
  };
  for (const auto& c : cases) {
    std::string d = broken_ckpt(c.name, c.bytes);
    expect_bad({"eval", "--ckpt", d, "--data", dir_ + "/corpus"}, c.word);
    EXPECT_EQ(slurp(d + "/model.safetensors"), c.bytes) << c.name << ": file changed";
  }
  // Weights of the wrong shape or type for the config.
  auto cfg = nlohmann::json::parse(slurp(dir_ + "/ckpt/config.json"));
  cfg["local"]["width"] = 64;
  std::string d = broken_ckpt("shape", good);
  write(d + "/config.json", cfg.dump());
  expect_bad({"generate", "--ckpt", d}, "shape");
  d = broken_ckpt("wrongtype", safetensors(R"({"global_pad":{"dtype":"I64","shape":[64],"data_offsets":[0,512]}})",
                                           std::string(512, '\0')));
  expect_bad({"generate", "--ckpt", d}, "global_pad");
}

TEST_F(Cli, PromptErrors) {
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--prompt", std::string(64, 'a')}, "context");
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--prompt-file", dir_ + "/no-such-prompt"}, "no-such-prompt");
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--prompt", "a", "--prompt-file", dir_ + "/corpus/a.txt"}, "excludes");
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
    Result alone = run({"generate", "--ckpt", dir_ + "/ckpt", "--prompt", prompts[i], "--max-bytes", "30",
                        "--temperature", "0"});
    // JSON shows bytes that are not UTF-8 as U+FFFD; compare only when the output is ASCII.
    bool ascii = std::all_of(alone.out.begin(), alone.out.end(), [](char c) { return c > 0 && c < 127; });
    if (ascii) EXPECT_EQ(rows[i]["output"].get<std::string>(), alone.out) << i;
  }
  write(dir_ + "/empty_prompts.txt", "");
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--prompts-file", dir_ + "/empty_prompts.txt"}, "no prompts");
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--prompts-file", dir_ + "/prompts.txt", "--batch", "0"}, "--batch");
}

// bench measures every case it is asked for and reports it as JSON lines (values are machine-dependent;
// what is checked is that each case ran and its numbers are sane).
TEST_F(Cli, BenchReportsEveryCase) {
  const std::string json_out = dir_ + "/bench.jsonl";
  Result r = run({"bench", "--configs", "mb_tiny", "tf_tiny", "blt_tiny", "--steps", "1", "--gen-bytes", "20",
                  "--gen-batch", "3", "--max-context", "128", "--peak-n", "128", "--uncached", "blt_tiny", "--json-out",
                  json_out});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(slurp(json_out), r.out);
  std::istringstream lines(r.out);
  std::string line;
  std::map<std::string, int> count;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    const std::string kind = j["bench"];
    ++count[kind];
    if (kind == "train") {
      EXPECT_GT(j["bytes_per_s"].get<double>(), 0);
      EXPECT_GT(j["mfu"].get<double>(), 0);
      EXPECT_LT(j["mfu"].get<double>(), 1);
    }
    if (kind == "generate") {
      EXPECT_GT(j["bytes_per_s"].get<double>(), 0);
      if (j["cache"] == false) EXPECT_TRUE(j["same_bytes"].get<bool>());
    }
    if (kind == "max_context") EXPECT_TRUE(j["fits"].get<bool>()) << line;
  }
  EXPECT_EQ(count["matmul_peak"], 1);
  EXPECT_EQ(count["train"], 3);
  EXPECT_EQ(count["generate"], 3 * 2 + 1);  // batch 1 and batch 3 per config, BLT without cache
  EXPECT_EQ(count["max_context"], 2);       // MEGABYTE at 64 and 128 bytes
  EXPECT_NE(r.err.find("| mb_tiny | megabyte |"), std::string::npos) << r.err;
  expect_bad({"bench", "--configs", "no-such-config"}, "no-such-config");
  expect_bad({"bench", "--configs", "mb_tiny", "--precision", "fp8"}, "--precision");
}

TEST_F(Cli, DeviceAndPrecisionErrors) {
  expect_bad({"eval", "--ckpt", dir_ + "/ckpt", "--data", dir_ + "/corpus", "--precision", "fp16"}, "--precision");
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--precision", "int8"}, "--precision");
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--decode", "warp"}, "--decode");
  if (!cuda_available_) expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--decode", "graphs"}, "cuda");
  if (!cuda_available_) expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--device", "cuda"}, "CUDA");
  // bf16 autocast runs on the CPU too (slowly: no bf16 matrix units here) and gives a close bpb.
  Result a = run({"eval", "--ckpt", dir_ + "/ckpt", "--data", dir_ + "/corpus", "--json", "--precision", "fp32"});
  Result b = run({"eval", "--ckpt", dir_ + "/ckpt", "--data", dir_ + "/corpus", "--json", "--precision", "bf16"});
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  auto ja = nlohmann::json::parse(a.out), jb = nlohmann::json::parse(b.out);
  EXPECT_EQ(jb["precision"], "bf16");
  EXPECT_NEAR(jb["bpb"].get<double>(), ja["bpb"].get<double>(), 0.01 * ja["bpb"].get<double>());
}

TEST_F(Cli, ExistingRunIsNeverDamaged) {
  const std::string model = slurp(dir_ + "/ckpt/model.safetensors"), trainer = slurp(dir_ + "/ckpt/trainer.json");
  // A fresh run into an existing run's directory is refused; so is --resume with a different config.
  expect_bad({"train", "--model", "megabyte", "--config", "tiny", "--data", dir_ + "/corpus", "--out", dir_ + "/ckpt"},
             "--resume");
  expect_bad({"train", "--model", "megabyte", "--config", "demo", "--data", dir_ + "/corpus", "--out", dir_ + "/ckpt",
              "--resume"}, "differs");
  expect_bad({"train", "--data", dir_ + "/corpus", "--out", dir_ + "/nothing", "--resume"}, "nothing to resume");
  EXPECT_EQ(slurp(dir_ + "/ckpt/model.safetensors"), model);
  EXPECT_EQ(slurp(dir_ + "/ckpt/trainer.json"), trainer);
}

TEST_F(Cli, CtrlCSavesACheckpointAndResumes) {
  const std::string out = dir_ + "/interrupted";
  pid_t pid = spawn({"train", "--model", "transformer", "--config", "tiny", "--data", dir_ + "/corpus", "--out", out,
                     "--steps", "100000", "--batch", "2", "--log-every", "1", "--ckpt-every", "0", "--threads", "1",
                     "--peak-flops", "1e11"},
                    dir_ + "/int.out", dir_ + "/int.err");
  // Wait until a few steps are logged, then interrupt.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string m = slurp(out + "/metrics.jsonl");
    if (std::count(m.begin(), m.end(), '\n') >= 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GT(pid, 0);  // never signal our own process group
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << slurp(dir_ + "/int.err");
  EXPECT_EQ(WEXITSTATUS(status), 130) << slurp(dir_ + "/int.err");
  auto tj = nlohmann::json::parse(slurp(out + "/trainer.json"));
  int64_t step = tj["step"].get<int64_t>();
  EXPECT_GE(step, 3);
  Result r = run({"train", "--out", out, "--data", dir_ + "/corpus", "--resume", "--steps", std::to_string(step + 2),
                  "--batch", "2", "--threads", "1", "--peak-flops", "1e11"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(slurp(out + "/trainer.json"))["step"].get<int64_t>(), step + 2);
}

// BLT end to end: an entropy model, a BLT trained on its patches, cached and uncached generation,
// evaluation, `bytelm patch`, and the errors of that path.
TEST_F(Cli, BltEndToEnd) {
  const std::string corpus = dir_ + "/corpus", ent = dir_ + "/ent", blt = dir_ + "/blt";
  auto common = std::vector<std::string>{"--data", corpus, "--steps", "2", "--batch", "2", "--threads", "1", "--peak-flops", "1e11"};
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
  Result uncached = run({"generate", "--ckpt", blt, "--prompt", "call me", "--max-bytes", "40", "--temperature", "0", "--no-cache"});
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
  expect_bad({"train", "--model", "blt", "--config", "tiny", "--data", corpus, "--out", dir_ + "/x"}, "--entropy-model");
  expect_bad({"train", "--model", "blt", "--config", "tiny", "--data", corpus, "--out", dir_ + "/x", "--entropy-model",
              dir_ + "/ckpt"}, "not an entropy model");
  r = run({"train", "--model", "entropy", "--config", BYTELM_SOURCE_DIR "/configs/ent_demo.json", "--out", dir_ + "/ent2",
           "--data", corpus, "--steps", "1", "--batch", "1", "--threads", "1", "--peak-flops", "1e11"});
  ASSERT_EQ(r.code, 0) << r.err;
  expect_bad({"train", "--model", "blt", "--config", "tiny", "--data", corpus, "--out", dir_ + "/x", "--entropy-model",
              dir_ + "/ent2"}, "does not fit");
  EXPECT_FALSE(fs::exists(dir_ + "/x"));
  write(dir_ + "/empty.txt", "");
  expect_bad({"patch", "--entropy-model", ent, dir_ + "/empty.txt"}, "empty");
  expect_bad({"patch", "--entropy-model", ent, corpus + "/a.txt", "--threshold", "nan"}, "--threshold");
  expect_bad({"patch", "--entropy-model", ent, corpus + "/a.txt", "--bytes-per-patch", "0.5"}, "--bytes-per-patch");
  expect_bad({"patch", "--entropy-model", ent, corpus + "/a.txt", "--max-patch-length", "-1"}, "--max-patch-length");
  expect_bad({"patch", "--entropy-model", dir_ + "/ckpt", corpus + "/a.txt"}, "not an entropy model");
  expect_bad({"patch", corpus + "/a.txt"}, "--entropy-model");
}
