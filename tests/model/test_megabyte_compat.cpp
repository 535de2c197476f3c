// test_megabyte_compat.cpp — a MEGABYTE checkpoint written before the variant keys existed (conv encoder,
// cross-patch attention, N levels; tests/fixtures/megabyte_v1, made by commit 517bcac) loads unchanged,
// keeps its config, scores what that commit's `bytelm eval` printed and greedy-decodes what it generated.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "eval/evaluate.h"
#include "generate/generate.h"
#include "model/checkpoint.h"
#include "model/model.h"

using namespace bytelm;

namespace {

const std::string kDir = std::string(BYTELM_SOURCE_DIR) + "/tests/fixtures/megabyte_v1";

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

TEST(MegabyteCompat, OldCheckpointScoresAsBefore) {
  torch::set_num_threads(1);  // as when the numbers were recorded (--threads 1)
  auto model = load_for_inference(kDir + "/ckpt", "cpu", 1);
  // The config round-trips: the new keys stay at their defaults (off) and are not needed in the file.
  EXPECT_EQ(model->config().to_json(), load_checkpoint_config(kDir + "/ckpt").to_json());
  EXPECT_EQ(model->num_params(), 31296);
  const auto expected = nlohmann::json::parse(slurp(kDir + "/expected.json"));
  const std::string text = slurp(kDir + "/text.txt");
  ASSERT_EQ(int64_t(text.size()), expected["bytes"].get<int64_t>());
  const auto* data = reinterpret_cast<const uint8_t*>(text.data());
  const double n = double(text.size()), ln2 = std::log(2.0);
  const double bpb = score_bytes(*model, data, int64_t(text.size()), 4, "cpu") / ln2 / n;
  const double bpb16 = score_bytes_sliding(*model, data, int64_t(text.size()), 16, 4, "cpu") / ln2 / n;
  // Bit-for-bit on the machine that recorded them; the tolerance only absorbs another CPU's BLAS kernels
  // (float32 sums in a different order). An architecture change moves these by far more.
  EXPECT_NEAR(bpb, expected["bpb"].get<double>(), 1e-6);
  EXPECT_NEAR(bpb16, expected["bpb_stride16"].get<double>(), 1e-6);
  if (bpb == expected["bpb"].get<double>()) std::printf("bit-exact: bpb %.17g\n", bpb);
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
