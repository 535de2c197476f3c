// test_bench_command.cpp — `bytelm bench` through the binary: every case it is asked for runs and is
// reported as JSON lines and a table; bad configs and precisions are one-line errors.
#include "cli/cli_harness.h"

using namespace bytelm_test;

// bench measures every case it is asked for and reports it as JSON lines (values are machine-dependent;
// what is checked is that each case ran and its numbers are sane).
TEST_F(Cli, BenchReportsEveryCase) {
  const std::string json_out = dir_ + "/bench.jsonl";
  Result r =
      run({"bench", "--configs", "mb_tiny", "tf_tiny", "blt_tiny", "--steps", "1", "--gen-bytes", "20", "--gen-batch",
           "3", "--max-context", "128", "--peak-n", "128", "--uncached", "blt_tiny", "--json-out", json_out});
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
      // MFU is model FLOP/s over the peak measured in this run. The test's 128^3 peak is too small to bound
      // MFU below 1 on a busy machine (its median can drop a hundredfold), so check the arithmetic instead.
      EXPECT_GT(j["mfu"].get<double>(), 0);
      EXPECT_NEAR(j["mfu"].get<double>(), j["flops_per_s"].get<double>() / j["mfu_peak_flops"].get<double>(),
                  1e-9 * j["mfu"].get<double>());
      EXPECT_NEAR(j["flops_per_s"].get<double>(), j["bytes_per_s"].get<double>() * j["flops_per_byte"].get<double>(),
                  1e-6 * j["flops_per_s"].get<double>());
      // Each row's own peak, measured around its training steps, is its divisor.
      EXPECT_EQ(j["mfu_peak_flops"], j["matmul_peak_flops_per_s"]);
      EXPECT_LE(j["matmul_peak_flops_per_s_min"].get<double>(), j["matmul_peak_flops_per_s"].get<double>());
    }
    if (kind == "generate") {
      EXPECT_GT(j["bytes_per_s"].get<double>(), 0);
      if (j["batch"] == 3) ++count[std::string("positions_") + j["positions"].get<std::string>()];
      if (j["cache"] == false) EXPECT_TRUE(j["same_bytes"].get<bool>());
    }
    if (kind == "max_context") EXPECT_TRUE(j["fits"].get<bool>()) << line;
  }
  EXPECT_EQ(count["matmul_peak"], 1);
  EXPECT_EQ(count["train"], 3);
  // Batch 1 and batch 3 per config (rows at their own positions and at a shared one: every model has row
  // decoding), BLT without cache.
  EXPECT_EQ(count["generate"], 3 * 3 + 1);
  EXPECT_EQ(count["positions_rows"], 3);
  EXPECT_EQ(count["positions_shared"], 3);
  EXPECT_EQ(count["max_context"], 2);  // MEGABYTE at 64 and 128 bytes
  EXPECT_NE(r.err.find("| mb_tiny | megabyte |"), std::string::npos) << r.err;
  expect_bad({"bench", "--configs", "no-such-config"}, "no-such-config");
  expect_bad({"bench", "--configs", "mb_tiny", "--precision", "fp8"}, "--precision");
  expect_bad({"bench", "--configs", "mb_tiny", "--decode-weights", "int4"}, "--decode-weights");
  expect_bad({"bench", "--configs", "mb_tiny", "--decode-weights", "bf16", "--precision", "bf16"}, "--decode-weights");
}

// Batch-1 generation with bf16 decoding weights is timed and labelled as such.
TEST_F(Cli, BenchDecodeWeightsBf16) {
  Result r = run({"bench", "--configs", "tf_tiny", "--skip-train", "--gen-bytes", "16", "--repeat", "1", "--peak-n",
                  "128", "--decode-weights", "bf16"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  int generate = 0;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["bench"] != "generate") continue;
    ++generate;
    EXPECT_EQ(j["decode_weights"], "bf16");
    EXPECT_GT(j["bytes_per_s"].get<double>(), 0);
  }
  EXPECT_EQ(generate, 1);
  EXPECT_NE(r.err.find("bf16 weights"), std::string::npos) << r.err;
}
