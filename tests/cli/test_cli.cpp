// test_cli.cpp — the binary's contract across subcommands: --help lists every option with its default, and
// every bad-input case (flags, data, configs, checkpoints, devices) is one line, exit code 2, no file changed.
// Per-subcommand behaviour: test_train_command, test_inference_commands, test_blt_commands.
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
  for (auto [sub, option] : std::vector<std::pair<std::string, std::string>>{{"train", "--warmup"},
                                                                             {"eval", "--batch"},
                                                                             {"generate", "--top-k"},
                                                                             {"info", "--json"},
                                                                             {"bench", "--gen-bytes"}}) {
    Result r = run({sub, "--help"});
    EXPECT_EQ(r.code, 0) << sub;
    EXPECT_NE(r.out.find(option), std::string::npos) << sub << ": " << r.out;
  }
  Result r = run({"train", "--help"});
  EXPECT_NE(r.out.find("--steps INT=1000"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--lr FLOAT=0.001"), std::string::npos) << r.out;
  EXPECT_EQ(run({"--help"}).code, 0);
}

TEST_F(Cli, BadFlagsAndValues) {
  expect_bad({"train", "--bogus"}, "bogus");
  expect_bad({"frobnicate"}, "frobnicate");
  expect_bad({"train", "--model", "rnn", "--config", "tiny", "--data", dir_ + "/corpus", "--out", dir_ + "/x"}, "rnn");
  expect_bad({"train", "--model", "megabyte", "--config", "tiny", "--data", dir_ + "/corpus", "--out", dir_ + "/x",
              "--steps", "0"},
             "--steps");
  expect_bad({"train", "--model", "megabyte", "--config", "tiny", "--data", dir_ + "/corpus", "--out", dir_ + "/x",
              "--steps", "ten"},
             "steps");
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--top-p", "1.5"}, "--top-p");
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--temperature", "-1"}, "--temperature");
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--decode-weights", "fp16"}, "--decode-weights");
  expect_bad({"eval", "--ckpt", dir_ + "/ckpt", "--data", dir_ + "/corpus", "--device", "tpu"}, "tpu");
  expect_bad({"info"}, "--ckpt");
  expect_bad({"eval", "--data", dir_ + "/corpus"}, "--ckpt");
  expect_bad({"train", "--model", "megabyte", "--config", "tiny", "--data", dir_ + "/corpus"}, "--out");
  EXPECT_FALSE(fs::exists(dir_ + "/x"));
}

TEST_F(Cli, BadData) {
  auto train = [&](const std::string& data, const std::string& config = "tiny") {
    return std::vector<std::string>{"train", "--model", "megabyte",  "--config",  config, "--data",
                                    data,    "--out",   dir_ + "/x", "--threads", "1"};
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
    return std::vector<std::string>{"train",  "--model",        "megabyte", "--config", config,
                                    "--data", dir_ + "/corpus", "--out",    dir_ + "/x"};
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
              dir_ + "/corpus", "--out", dir_ + "/x"},
             "not 'transformer'");
  EXPECT_FALSE(fs::exists(dir_ + "/x"));
}

TEST_F(Cli, BadCheckpoints) {
  fs::create_directories(dir_ + "/noconfig");
  expect_bad({"eval", "--ckpt", dir_ + "/noconfig", "--data", dir_ + "/corpus"}, "config.json");
  expect_bad({"generate", "--ckpt", dir_ + "/no-such-dir"}, "no-such-dir");
  const std::string good = slurp(dir_ + "/ckpt/model.safetensors");
  struct Case {
    std::string name, bytes, word;
  };
  std::vector<Case> cases{
      {"truncated", good.substr(0, good.size() - 100), "safetensors"},
      {"header_beyond", safetensors(std::string(20, ' '), "").substr(0, 12), "header"},
      {"bad_json", safetensors("{\"a\": [1, 2", ""), "JSON"},
      {"offsets",
       safetensors(R"({"global_pad":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}})", std::string(8, '\0')),
       "offset"},
      {"dtype", safetensors(R"({"global_pad":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0')),
       "dtype"},
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
  // A file far smaller than the config's model: refused before the model is built.
  expect_bad({"generate", "--ckpt", d}, "does not belong to these weights");
  // Hostile text in a config is echoed escaped: no raw control bytes or invalid UTF-8 reach the terminal.
  auto hostile = nlohmann::json::parse(slurp(dir_ + "/ckpt/config.json"));
  hostile["\x1b[31mred"] = 1;
  d = broken_ckpt("hostile", good);
  write(d + "/config.json", hostile.dump());
  expect_bad({"generate", "--ckpt", d}, "unknown key '\\x1b[31mred'");
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
