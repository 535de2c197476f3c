// test_megabyte_compat.cpp — a MEGABYTE checkpoint written before the variant keys existed (conv encoder,
// cross-patch attention, N levels; tests/fixtures/megabyte_v1, made by commit 517bcac) loads unchanged,
// keeps its config, scores what that commit's `bytelm eval` printed and greedy-decodes what it generated.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/cli_harness.h"
#include "eval/evaluate.h"
#include "generate/generate.h"
#include "model/checkpoint.h"
#include "model/model.h"

using namespace bytelm;

namespace {

const std::string kDir = std::string(BYTELM_SOURCE_DIR) + "/tests/fixtures/megabyte_v1";

using bytelm_test::slurp;

}  // namespace

TEST(MegabyteCompat, OldCheckpointScoresAsBefore) {
  torch::set_num_threads(1);  // as when the numbers were recorded (--threads 1)
  auto model = load_for_inference(kDir + "/ckpt", "cpu", 1);
  // The config round-trips to the very JSON the old code wrote: the new keys stay off and are not written.
  EXPECT_FALSE(model->config().megabyte_variant());
  EXPECT_EQ(model->config().to_json(), nlohmann::json::parse(slurp(kDir + "/ckpt/config.json")));
  EXPECT_EQ(model->num_params(), 31296);
  const auto expected = nlohmann::json::parse(slurp(kDir + "/expected.json"));
  const std::string text = slurp(kDir + "/text.txt");
  ASSERT_EQ(int64_t(text.size()), expected["bytes"].get<int64_t>());
  const auto* data = reinterpret_cast<const uint8_t*>(text.data());
  const double n = double(text.size()), ln2 = std::log(2.0);
  const double bpb = score_bytes(*model, data, int64_t(text.size()), 4, "cpu") / ln2 / n;
  const double bpb16 = score_bytes_sliding(*model, data, int64_t(text.size()), 16, 4, "cpu") / ln2 / n;
  // The numbers were recorded on one machine and BLAS (Intel, OpenBLAS); float32 sums round differently on
  // other CPUs and BLAS libraries, so across machines the comparison has a tolerance. Within one machine and
  // build the CLI is compared with itself and with this process bit for bit (next test).
  EXPECT_NEAR(bpb, expected["bpb"].get<double>(), 1e-6);
  EXPECT_NEAR(bpb16, expected["bpb_stride16"].get<double>(), 1e-6);
  std::printf("bpb %.17g (recorded %.17g), stride 16: %.17g (recorded %.17g)\n", bpb, expected["bpb"].get<double>(),
              bpb16, expected["bpb_stride16"].get<double>());
}

TEST(MegabyteCompat, OldCheckpointGeneratesAsBefore) {
  torch::set_num_threads(1);
  auto model = load_for_inference(kDir + "/ckpt", "cpu", 1);
  GenerateOptions opt;
  opt.prompt = "Call me Ishmael. ";
  opt.max_bytes = 24;
  opt.temperature = 0;  // greedy; past the context the window is re-prefilled, as the CLI does
  EXPECT_EQ(generate(*model, opt, [](uint8_t) {}), slurp(kDir + "/greedy.txt"));
}

// The recorded numbers came from the CLI; today's CLI prints them again, within float32 rounding across
// machines, and bit for bit the same twice on this machine (and equal to the in-process score).
TEST(MegabyteCompat, CliScoresAndGeneratesAsBefore) {
  using bytelm_test::Result;
  using bytelm_test::spawn;
  using bytelm_test::wait_for;
  namespace fs = std::filesystem;
  const auto expected = nlohmann::json::parse(slurp(kDir + "/expected.json"));
  const std::string tmp = (fs::temp_directory_path() / ("bytelm_compat_" + std::to_string(getpid()))).string();
  auto run = [&](const std::vector<std::string>& args) {
    return wait_for(spawn(args, tmp + ".out", tmp + ".err"), tmp + ".out", tmp + ".err");
  };
  torch::set_num_threads(1);
  auto model = load_for_inference(kDir + "/ckpt", "cpu", 1);
  const std::string text = slurp(kDir + "/text.txt");
  const auto* data = reinterpret_cast<const uint8_t*>(text.data());
  const double n = double(text.size()), ln2 = std::log(2.0);
  for (const auto& [stride, key] : {std::pair<std::string, std::string>{"0", "bpb"}, {"16", "bpb_stride16"}}) {
    double twice[2];
    for (double& bpb : twice) {
      Result r = run({"eval", "--ckpt", kDir + "/ckpt", "--data", kDir + "/text.txt", "--json", "--threads", "1",
                      "--stride", stride});
      ASSERT_EQ(r.code, 0) << r.err;
      bpb = nlohmann::json::parse(r.out).at("bpb");
    }
    EXPECT_NEAR(twice[0], expected.at(key).get<double>(), 1e-6);
    EXPECT_EQ(twice[0], twice[1]);
    const double here = stride == "0" ? score_bytes(*model, data, int64_t(text.size()), 4, "cpu") / ln2 / n
                                      : score_bytes_sliding(*model, data, int64_t(text.size()), 16, 4, "cpu") / ln2 / n;
    EXPECT_NEAR(twice[0], here, 1e-9) << "the CLI and the library disagree on this machine";
  }
  Result g = run({"generate", "--ckpt", kDir + "/ckpt", "--prompt", "Call me Ishmael. ", "--max-bytes", "24",
                  "--temperature", "0"});
  ASSERT_EQ(g.code, 0) << g.err;
  EXPECT_EQ(g.out, slurp(kDir + "/greedy.txt"));
  fs::remove(tmp + ".out");
  fs::remove(tmp + ".err");
}
