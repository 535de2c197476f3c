// test_train_faults.cpp — faults during training: a run killed (SIGKILL) at seeded random moments, many of
// them inside a checkpoint write, always leaves a checkpoint that loads and resumes to the end; a full disk
// (a file-size limit) fails the checkpoint in one line and leaves the last one as it was; a data file
// truncated under a running job ends it in one line (no core dump) with the checkpoint intact.
#include <random>

#include "cli_harness.h"

using namespace bytelm_test;

namespace {

class Faults : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { dir_ = make_trained_fixture("bytelm_faults", 3000, "tiny"); }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static Result run(const std::vector<std::string>& args) { return run_in(dir_, args); }

  static std::vector<std::string> train_args(const std::string& out, const std::string& steps) {
    return {"train", "--model", "megabyte", "--config", "tiny", "--data", dir_ + "/corpus", "--out", out,
            "--steps", steps, "--batch", "2", "--threads", "1", "--warmup", "1", "--ckpt-every", "1",
            "--eval-every", "0", "--peak-flops", "1e11"};
  }
  // The checkpoint's files (metrics.jsonl aside: a failed run may append to it).
  static std::map<std::string, std::string> checkpoint_files(const std::string& out) {
    std::map<std::string, std::string> files;
    for (const auto& f : fs::directory_iterator(out))
      if (f.path().filename() != "metrics.jsonl" && f.is_regular_file()) files[f.path().filename()] = slurp(f.path());
    return files;
  }
  static int64_t step_of(const std::string& out) {
    return nlohmann::json::parse(slurp(out + "/trainer.json")).at("step").get<int64_t>();
  }

  static std::string dir_;
};
std::string Faults::dir_;

TEST_F(Faults, KilledAnywhereLeavesACheckpointThatLoadsAndResumes) {
  const std::string out = dir_ + "/killed";
  std::mt19937 rng(2024);
  int staged_at_kill = 0;
  for (int round = 0; round < 6; ++round) {
    const bool fresh = !fs::exists(out + "/trainer.json");
    const auto args = fresh ? train_args(out, "100000") : std::vector<std::string>{"train", "--out", out, "--resume"};
    const pid_t pid = spawn(args, dir_ + "/stdout", dir_ + "/stderr");
    // Start-up takes about a second; then a checkpoint is written after every step.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500 + rng() % 1500));
    staged_at_kill += fs::exists(out + "/.checkpoint-next") ? 1 : 0;
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    if (!fs::exists(out + "/trainer.json")) continue;  // killed before its first checkpoint
    // What is on disk loads as it is (inference does not finish a commit)...
    Result r = run({"info", "--ckpt", out, "--json"});
    EXPECT_EQ(r.code, 0) << "round " << round << ": " << r.err;
  }
  // ... and the run resumes (from the interrupted commit's step when it was complete) and goes on.
  ASSERT_TRUE(fs::exists(out + "/trainer.json"));
  const int64_t before = step_of(out);
  Result r = run({"train", "--out", out, "--resume", "--exit-after", std::to_string(before + 3)});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(step_of(out), before + 3);
  EXPECT_FALSE(fs::exists(out + "/.checkpoint-next"));
  RecordProperty("kills_during_a_checkpoint_write", staged_at_kill);
}

TEST_F(Faults, FullDiskFailsTheCheckpointInOneLineAndKeepsTheLastOne) {
  const std::string out = dir_ + "/full";
  Result r = run(train_args(out, "2"));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto before = checkpoint_files(out);
  // Files may not grow past half the weights: the next checkpoint cannot be written (SIGXFSZ ignored, so
  // writes fail with EFBIG as on a full disk). dash's ulimit -f counts 512-byte blocks.
  const size_t weights = before.at("model.safetensors").size();
  std::vector<std::string> full{"/bin/sh", "-c",
                                "trap '' XFSZ; ulimit -f " + std::to_string(weights / 2 / 512) + " && exec \"$0\" \"$@\"",
                                BYTELM_BIN, "train", "--out", out, "--resume", "--steps", "4"};
  r = wait_for(spawn_argv(full, dir_ + "/stdout", dir_ + "/stderr"), dir_ + "/stdout", dir_ + "/stderr");
  EXPECT_NE(r.code, 0);
  const auto error = r.err.find("bytelm: error: ");
  ASSERT_NE(error, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n', error), r.err.size() - 1) << r.err;
  EXPECT_TRUE(checkpoint_files(out) == before) << "the last checkpoint must stay as it was";
  r = run({"train", "--out", out, "--resume", "--steps", "4"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(step_of(out), 4);
}

TEST_F(Faults, DataTruncatedUnderARunningJobIsOneLine) {
  const std::string data = dir_ + "/shrinking", out = dir_ + "/truncated";
  fs::create_directories(data);
  std::string text;
  for (uint32_t i = 0; i < (1u << 20); ++i) text += char('a' + (i * 7919u) % 26u);
  write(data + "/big.txt", text);
  auto args = train_args(out, "100000");
  args[6] = data;  // --data
  const pid_t pid = spawn(args, dir_ + "/stdout", dir_ + "/stderr");
  for (int i = 0; i < 200 && !fs::exists(out + "/trainer.json"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(fs::exists(out + "/trainer.json")) << slurp(dir_ + "/stderr");
  fs::resize_file(data + "/big.txt", 0);
  int status = 0;
  bool ended = false;
  for (int i = 0; i < 600 && !ended; ++i) {
    ended = waitpid(pid, &status, WNOHANG) == pid;
    if (!ended) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!ended) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    FAIL() << "training went on for 30 s after its data file was truncated";
  }
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 2);
  const std::string err = slurp(dir_ + "/stderr");
  EXPECT_NE(err.find("bytelm: error: a memory-mapped file (data or checkpoint) shrank"), std::string::npos) << err;
  EXPECT_EQ(run({"info", "--ckpt", out, "--json"}).code, 0) << "the last checkpoint must load";
}

}  // namespace
