// test_train_options.cpp — the run record and --resume merging without a model: stored settings win,
// given differing ones are refused by flag, --steps extends, older records keep the command line's values;
// the memory estimate grows with the batch and refuses an impossible one by naming --batch; checkpoints are
// committed whole or not at all.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "model/config.h"
#include "train/memory_check.h"
#include "train/run_dir.h"
#include "train/train_options.h"
#include "util/error.h"

using bytelm::TrainOptions;

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const bytelm::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(TrainOptions, ResumeTakesTheRecord) {
  TrainOptions run;
  run.model = "megabyte";
  run.config = "demo";
  run.data = {"data/corpus"};
  run.out = "runs/x";
  run.batch = 16;
  run.lr = 2e-3;
  run.steps = 600;
  nlohmann::json record = bytelm::train_record(run);
  record["step"] = 100;

  TrainOptions cli;  // `train --out runs/x --resume`
  cli.out = "runs/x";
  cli.resume = true;
  TrainOptions merged = bytelm::merge_resume(cli, record, 100);
  EXPECT_EQ(merged.model, "megabyte");
  EXPECT_EQ(merged.config, "demo");
  EXPECT_EQ(merged.data, run.data);
  EXPECT_EQ(merged.batch, 16);
  EXPECT_EQ(merged.lr, 2e-3);
  EXPECT_EQ(merged.steps, 600);
  EXPECT_EQ(bytelm::train_record(merged), bytelm::train_record(run));

  cli.batch = 8;
  cli.given = {"batch"};
  EXPECT_NE(error_of([&] { bytelm::merge_resume(cli, record, 100); }).find("--batch 8 differs"), std::string::npos);
  cli.batch = 16;  // the same value is fine
  EXPECT_EQ(bytelm::merge_resume(cli, record, 100).batch, 16);
  cli.given = {"steps", "log-every"};
  cli.steps = 900;
  cli.log_every = 1;
  merged = bytelm::merge_resume(cli, record, 100);
  EXPECT_EQ(merged.steps, 900);
  EXPECT_EQ(merged.log_every, 1);
  EXPECT_EQ(bytelm::train_record(merged)["steps"], 900);
  cli.steps = 50;
  EXPECT_NE(error_of([&] { bytelm::merge_resume(cli, record, 100); }).find("--steps"), std::string::npos);
  // "./data/corpus/" names the same directory as "data/corpus".
  cli = TrainOptions{};
  cli.out = "runs/x";
  cli.data = {"./data/corpus/"};
  cli.given = {"data"};
  EXPECT_EQ(bytelm::merge_resume(cli, record, 100).data, run.data);
  // A record from before a setting existed keeps the command line's value.
  record.erase("bytes_per_patch");
  cli.bytes_per_patch = 4.5;
  cli.given = {"bytes-per-patch"};
  EXPECT_EQ(bytelm::merge_resume(cli, record, 100).bytes_per_patch, 4.5);
}

TEST(TrainOptions, RangeChecksNameTheFlag) {
  TrainOptions o;
  o.out = "x";
  bytelm::check_train_options(o);
  o.seed = -1;
  EXPECT_NE(error_of([&] { bytelm::check_train_options(o); }).find("--seed"), std::string::npos);
  o.seed = 1;
  o.threads = -1;
  EXPECT_NE(error_of([&] { bytelm::check_train_options(o); }).find("--threads"), std::string::npos);
  o.threads = 0;
  o.precision = "fp8";
  EXPECT_NE(error_of([&] { bytelm::check_train_options(o); }).find("--precision"), std::string::npos);
}

TEST(MemoryCheck, EstimateGrowsWithTheBatchAndRefusesTheImpossible) {
  // mb_demo's footprint (its activation_floats_per_byte() is checked in test_models).
  const bytelm::TrainingFootprint f{3.0 * 256 + 4.0 * 384 * 16 / 8 + 2.0 * 128 * 16, 512, 7617024};
  const int64_t one = bytelm::estimate_training_bytes(f, 1), many = bytelm::estimate_training_bytes(f, 64);
  EXPECT_GT(one, 16 * 7617024);
  EXPECT_GT(many, one);
  bytelm::check_training_memory(f, 16);  // the demo's batch fits anywhere
  EXPECT_NE(error_of([&] { bytelm::check_training_memory(f, 10000000); }).find("--batch 10000000"), std::string::npos);
}

TEST(RunDir, CheckpointsAreCommittedWholeOrNotAtAll) {
  namespace fs = std::filesystem;
  const std::string out = (fs::temp_directory_path() / ("bytelm_commit_" + std::to_string(getpid()))).string();
  fs::remove_all(out);
  fs::create_directories(out);
  auto put = [](const std::string& path, const std::string& text) { std::ofstream(path) << text; };
  auto get = [](const std::string& path) {
    std::ifstream f(path);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  };
  put(out + "/model.safetensors", "old");
  put(out + "/trainer.json", R"({"step": 1})");
  // Killed while writing: the staged files are dropped, the last checkpoint stands.
  std::string stage = bytelm::stage_checkpoint(out);
  put(stage + "/model.safetensors", "new");
  bytelm::finish_checkpoint(out);
  EXPECT_FALSE(fs::exists(stage));
  EXPECT_EQ(get(out + "/model.safetensors"), "old");
  // Killed after the staged checkpoint was complete: the commit is finished (rolled forward) on resume.
  stage = bytelm::stage_checkpoint(out);
  put(stage + "/model.safetensors", "new");
  put(stage + "/trainer.json", R"({"step": 2})");
  put(stage + "/COMPLETE", "");
  fs::rename(stage + "/model.safetensors", out + "/model.safetensors");  // as if killed mid-commit
  int64_t step = 0;
  bytelm::read_run_record(out, &step);
  EXPECT_EQ(step, 2);
  EXPECT_EQ(get(out + "/model.safetensors"), "new");
  EXPECT_FALSE(fs::exists(stage));
  // The normal path.
  stage = bytelm::stage_checkpoint(out);
  put(stage + "/trainer.json", R"({"step": 3})");
  bytelm::commit_checkpoint(out);
  bytelm::read_run_record(out, &step);
  EXPECT_EQ(step, 3);
  EXPECT_FALSE(fs::exists(stage));
  fs::remove_all(out);
}
