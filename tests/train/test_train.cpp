// test_train.cpp — training end to end: overfitting a tiny corpus, exact resume, checkpoint round trip.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "data/corpus.h"
#include "eval/evaluate.h"
#include "io/atomic_file.h"
#include "model/checkpoint.h"
#include "train/trainer.h"
#include "util/error.h"

using namespace bytelm;
namespace fs = std::filesystem;

namespace {

std::string temp_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("bytelm_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

void write(const std::string& path, const std::string& s) { std::ofstream(path, std::ios::binary) << s; }

std::vector<nlohmann::json> read_metrics(const std::string& dir) {
  std::vector<nlohmann::json> out;
  std::ifstream f(dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(f, line)) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) out.push_back(j);
  }
  return out;
}

TrainOptions small_run(const std::string& model, const std::string& config, const std::string& data,
                       const std::string& out) {
  TrainOptions o;
  o.model = model;
  o.config = config;
  o.data = {data};
  o.out = out;
  o.batch = 4;
  o.warmup = 2;
  o.lr = 3e-3;
  o.log_every = 1;
  o.eval_every = 0;
  o.eval_batches = 1;
  o.threads = 1;
  o.peak_flops = 1e11;
  return o;
}

class Training : public ::testing::TestWithParam<std::string> {};

}  // namespace

// Trains `model` with config `cfg` on a small repeated corpus, then scores that corpus: bits per byte.
double overfit_bpb(const std::string& model, const nlohmann::json& cfg, int64_t steps) {
  auto dir = temp_dir("overfit_" + model);
  std::string unit = "the cat sat on the mat; the dog ate the log. ";
  std::string text;
  while (text.size() < 16384) text += unit;
  write(dir + "/corpus.txt", text);
  write(dir + "/config.json", cfg.dump());
  auto o = small_run(model, dir + "/config.json", dir + "/corpus.txt", dir + "/run");
  o.steps = steps;
  o.warmup = 20;
  o.lr = 1e-2;
  o.batch = 8;
  o.val_fraction = 0;
  o.ckpt_every = 0;
  o.log_every = 50;
  EXPECT_EQ(run_train(o), 0);
  auto m = load_model(dir + "/run");
  m->eval();
  Corpus corpus({dir + "/corpus.txt"}, 0.0);
  auto f = corpus.files(Split::All).at(0);
  double bpb = score_bytes(*m, f.data, f.size, 8, "cpu") / std::log(2.0) / f.size;
  fs::remove_all(dir);
  return bpb;
}

// A tiny model memorises a small repeated corpus to < 0.05 bits per byte.
TEST_P(Training, OverfitsRepeatedCorpus) {
  // A longer context than the tiny preset so the unpredictable first byte of a window weighs little.
  nlohmann::json cfg = load_config("tiny", GetParam()).to_json();
  cfg["context"] = 256;
  EXPECT_LT(overfit_bpb(GetParam(), cfg, 300), 0.05) << GetParam();
}

// Stopping after step 3 and resuming gives exactly the losses and weights of an uninterrupted run.
TEST_P(Training, ResumeEqualsUninterrupted) {
  const std::string model = GetParam();
  auto dir = temp_dir("resume_" + model);
  std::string text;
  for (int i = 0; i < 4000; ++i) text += char('a' + (i * 7 + i / 13) % 26);
  write(dir + "/corpus.txt", text);
  auto a = small_run(model, "tiny", dir + "/corpus.txt", dir + "/a");
  a.steps = 7;
  ASSERT_EQ(run_train(a), 0);
  auto b = small_run(model, "tiny", dir + "/corpus.txt", dir + "/b");
  b.steps = 7;
  b.exit_after = 3;
  ASSERT_EQ(run_train(b), 0);
  EXPECT_EQ(read_metrics(dir + "/b").size(), 3u);
  b.exit_after = 0;
  b.resume = true;
  ASSERT_EQ(run_train(b), 0);
  auto ma = read_metrics(dir + "/a"), mb = read_metrics(dir + "/b");
  ASSERT_EQ(ma.size(), 7u);
  ASSERT_EQ(mb.size(), 7u);
  for (size_t i = 0; i < 7; ++i) {
    EXPECT_EQ(ma[i]["step"], mb[i]["step"]);
    EXPECT_EQ(ma[i]["loss"].get<double>(), mb[i]["loss"].get<double>()) << "step " << i + 1;
    EXPECT_EQ(ma[i]["grad_norm"].get<double>(), mb[i]["grad_norm"].get<double>()) << "step " << i + 1;
  }
  auto wa = load_model(dir + "/a"), wb = load_model(dir + "/b");
  auto pa = wa->parameters(), pb = wb->parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i]));
  // Resuming a finished run does nothing; a fresh run refuses to overwrite it.
  EXPECT_EQ(run_train(b), 0);
  b.resume = false;
  EXPECT_THROW(run_train(b), Error);
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(All, Training, ::testing::Values("transformer", "megabyte", "entropy"));

// A tiny BLT (static patches of 4, so no entropy model is needed) memorises a small corpus to < 0.1 bpb.
TEST(TrainingBlt, OverfitsRepeatedCorpus) {
  nlohmann::json cfg = load_config("tiny", "blt").to_json();
  cfg["bytelm_context"] = 256;
  cfg["patching_mode"] = "static";
  EXPECT_LT(overfit_bpb("blt", cfg, 200), 0.1);
}

// bf16 autocast training (fp32 weights and AdamW state): the loss falls, the checkpoint holds fp32
// weights, and an interrupted run resumes to exactly the uninterrupted one.
TEST(TrainingBf16, LearnsAndResumesExactly) {
  auto dir = temp_dir("bf16");
  std::string text;
  for (int i = 0; i < 6000; ++i) text += "call me ishmael. "[i % 17];
  write(dir + "/corpus.txt", text);
  auto a = small_run("megabyte", "tiny", dir + "/corpus.txt", dir + "/a");
  a.steps = 12;
  a.precision = "bf16";
  ASSERT_EQ(run_train(a), 0);
  auto b = a;
  b.out = dir + "/b";
  b.exit_after = 5;
  ASSERT_EQ(run_train(b), 0);
  b.exit_after = 0;
  b.resume = true;
  ASSERT_EQ(run_train(b), 0);
  auto ma = read_metrics(dir + "/a"), mb = read_metrics(dir + "/b");
  ASSERT_EQ(ma.size(), 12u);
  ASSERT_EQ(mb.size(), 12u);
  for (size_t i = 0; i < ma.size(); ++i) EXPECT_EQ(ma[i]["loss"].get<double>(), mb[i]["loss"].get<double>()) << i;
  EXPECT_LT(ma.back()["loss"].get<double>(), ma.front()["loss"].get<double>() - 1.0);
  for (const auto& p : load_model(dir + "/a")->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat32);
  fs::remove_all(dir);
}
