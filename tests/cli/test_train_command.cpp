// test_train_command.cpp — `bytelm train` as a new user meets it: --resume from the run record alone (and
// equal to an uninterrupted run), refused changes, --steps extension, changed data; --threads bounding every
// thread pool; failures before the first step (unwritable --out, impossible --batch); out of memory during a
// run; presets listed and defaulted; range checks and warnings; progress on a terminal; BLT --bytes-per-patch.
#include <pty.h>

#include "cli/cli_harness.h"

using namespace bytelm_test;
using json = nlohmann::json;

namespace {

std::vector<json> metric_lines(const std::string& path, const char* key) {
  std::vector<json> out;
  std::istringstream in(slurp(path));
  std::string line;
  while (std::getline(in, line))
    if (line.find(key) != std::string::npos) out.push_back(json::parse(line));
  return out;
}

// CPU ticks of every thread of `pid`, polled until it exits (the last values seen).
std::map<std::string, long> thread_ticks_until_exit(pid_t pid, int* status) {
  std::map<std::string, long> ticks;
  for (;;) {
    std::error_code ec;
    for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
      std::string stat = slurp(t.path().string() + "/stat");
      auto close = stat.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream fields(stat.substr(close + 2));
      std::string f;
      long utime = 0, stime = 0;
      for (int i = 0; i < 13 && fields >> f; ++i) {
        if (i == 11) utime = std::stol(f);
        if (i == 12) stime = std::stol(f);
      }
      ticks[t.path().filename().string()] = std::max(ticks[t.path().filename().string()], utime + stime);
    }
    if (waitpid(pid, status, WNOHANG) == pid) return ticks;
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
}

}  // namespace

TEST_F(Cli, ResumeNeedsOnlyOutAndMatchesAnUninterruptedRun) {
  const std::string out = dir_ + "/run", ref = dir_ + "/ref";
  auto args = [&](const std::string& where) {
    return std::vector<std::string>{
        "train",        "--model",  "transformer", "--config", "tiny",    "--data",    dir_ + "/corpus",
        "--out",        where,      "--steps",     "6",        "--batch", "3",         "--lr",
        "0.002",        "--warmup", "2",           "--seed",   "7",       "--threads", "1",
        "--peak-flops", "1e11",     "--log-every", "1"};
  };
  Result r = run(args(ref));
  ASSERT_EQ(r.code, 0) << r.err;
  auto first = args(out);
  first.insert(first.end(), {"--exit-after", "3"});
  r = run(first);
  ASSERT_EQ(r.code, 0) << r.err;
  const json before = json::parse(slurp(out + "/trainer.json"));
  EXPECT_EQ(before["step"], 3);
  // As if the run had logged steps 4 and 5 and died before their checkpoint (the last line torn): resuming
  // from step 3 trains them again and logs each step once.
  std::ofstream(out + "/metrics.jsonl", std::ios::app)
      << "{\"step\":4,\"loss\":99.0}\n{\"step\":5,\"val_bpb\":9.0}\n{\"step\":5,\"lo";

  r = run({"train", "--out", out, "--resume", "--peak-flops", "1e11"});
  ASSERT_EQ(r.code, 0) << r.err;
  const json after = json::parse(slurp(out + "/trainer.json"));
  EXPECT_EQ(after["step"], 6);
  for (const char* key :
       {"model", "config", "data", "steps", "batch", "lr", "warmup", "seed", "val_fraction", "corpus"})
    EXPECT_EQ(after[key], before[key]) << key;  // the record is never degraded
  EXPECT_EQ(after["model"], "transformer");
  // The same run: equal losses step by step, equal weights.
  auto losses = metric_lines(out + "/metrics.jsonl", "\"loss\""),
       ref_losses = metric_lines(ref + "/metrics.jsonl", "\"loss\"");
  ASSERT_EQ(losses.size(), 6u);
  ASSERT_EQ(ref_losses.size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(losses[i]["loss"], ref_losses[i]["loss"]) << "step " << i + 1;
  EXPECT_EQ(slurp(out + "/model.safetensors"), slurp(ref + "/model.safetensors"));

  // A flag that would change what the run computes is refused, naming it; the run is untouched.
  const std::string record = slurp(out + "/trainer.json"), weights = slurp(out + "/model.safetensors");
  expect_bad({"train", "--out", out, "--resume", "--batch", "4"}, "--batch");
  expect_bad({"train", "--out", out, "--resume", "--lr", "0.01"}, "--lr");
  expect_bad({"train", "--out", out, "--resume", "--seed", "8"}, "--seed");
  expect_bad({"train", "--out", out, "--resume", "--data", dir_}, "--data");
  expect_bad({"train", "--out", out, "--resume", "--model", "megabyte"}, "--model");
  expect_bad({"train", "--out", out, "--resume", "--steps", "2"}, "--steps");
  EXPECT_EQ(slurp(out + "/trainer.json"), record);
  EXPECT_EQ(slurp(out + "/model.safetensors"), weights);

  // The same values are accepted; --steps extends the run and is recorded.
  r = run({"train", "--out", out, "--resume", "--batch", "3", "--data", dir_ + "/corpus/", "--steps", "8",
           "--peak-flops", "1e11"});
  ASSERT_EQ(r.code, 0) << r.err;
  const json extended = json::parse(slurp(out + "/trainer.json"));
  EXPECT_EQ(extended["step"], 8);
  EXPECT_EQ(extended["steps"], 8);
  EXPECT_EQ(extended["batch"], 3);
}

TEST_F(Cli, ResumeRefusesChangedData) {
  const std::string data = dir_ + "/changing", out = dir_ + "/changing_run";
  fs::create_directories(data);
  fs::copy_file(dir_ + "/corpus/a.txt", data + "/a.txt");
  Result r = run({"train", "--model", "megabyte", "--config", "tiny", "--data", data, "--out", out, "--steps", "4",
                  "--exit-after", "1", "--batch", "2", "--threads", "1", "--peak-flops", "1e11"});
  ASSERT_EQ(r.code, 0) << r.err;
  write(data + "/b.txt", "more bytes appear after the run started");
  expect_bad({"train", "--out", out, "--resume"}, "--data");
}

TEST_F(Cli, ThreadsBoundEveryPool) {
  // Matmuls big enough that a BLAS would spread them over threads of its own if left alone.
  write(dir_ + "/tf256.json", R"({"model": "transformer", "context": 256, "layers": 2, "width": 256, "heads": 4})");
  pid_t pid = spawn({"train", "--model", "transformer", "--config", dir_ + "/tf256.json", "--data", dir_ + "/corpus",
                     "--out", dir_ + "/threads", "--steps", "3", "--batch", "8", "--threads", "1", "--warmup", "1"},
                    dir_ + "/threads.out", dir_ + "/threads.err");
  int status = 0;
  auto ticks = thread_ticks_until_exit(pid, &status);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << slurp(dir_ + "/threads.err");
  long total = 0;
  for (const auto& [tid, t] : ticks) total += t;
  int busy = 0;
  for (const auto& [tid, t] : ticks) busy += t > total / 10;
  ASSERT_GT(total, 20) << "too little work to tell";
  EXPECT_EQ(busy, 1) << "threads that did more than a tenth of the work with --threads 1";
}

TEST_F(Cli, FailsBeforeTheFirstStep) {
  auto train = [&](const std::string& out, const std::string& batch) {
    return std::vector<std::string>{"train", "--model", "megabyte", "--config", "tiny",      "--data", dir_ + "/corpus",
                                    "--out", out,       "--batch",  batch,      "--threads", "1"};
  };
  write(dir_ + "/a_file", "x");
  expect_bad(train(dir_ + "/a_file/run", "2"), "--out");
  expect_bad(train("/proc/bytelm_run", "2"), "--out");
  expect_bad(train(dir_ + "/huge", "10000000"), "--batch");
  EXPECT_FALSE(fs::exists(dir_ + "/huge"));
}

TEST_F(Cli, OutOfMemoryIsOneLineAndKeepsTheLastCheckpoint) {
  // Small weights, large activations: batch 256 x 256 bytes fits without a limit, not within 400 MB more
  // than bytelm needs to start (measured: 300-600 MB more fail at the first step after loading, 700 MB
  // passes it).
  write(dir_ + "/tf_wide.json", R"({"model": "transformer", "context": 256, "layers": 1, "width": 64, "heads": 2})");
  const std::string out = dir_ + "/oom";
  auto args = [&](const std::string& where) {
    return std::vector<std::string>{"train",
                                    "--model",
                                    "transformer",
                                    "--config",
                                    dir_ + "/tf_wide.json",
                                    "--data",
                                    dir_ + "/corpus",
                                    "--out",
                                    where,
                                    "--steps",
                                    "3",
                                    "--batch",
                                    "256",
                                    "--threads",
                                    "1",
                                    "--peak-flops",
                                    "1e11",
                                    "--warmup",
                                    "1"};
  };
  auto first = args(out);
  first.insert(first.end(), {"--exit-after", "1"});
  Result r = run(first);
  ASSERT_EQ(r.code, 0) << r.err;
  std::map<std::string, std::string> files;
  for (const auto& f : fs::directory_iterator(out)) files[f.path().filename()] = slurp(f.path());

  const int64_t limit = startup_kib() + 400000;
  r = run_limited({"train", "--out", out, "--resume"}, limit);
  EXPECT_EQ(r.code, 1) << r.err;
  // After the "resuming ..." line, the error is one line and the last.
  const auto error = r.err.find("bytelm: error: out of memory at step 2 with --batch 256: ");
  ASSERT_NE(error, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n', error), r.err.size() - 1) << r.err;
  std::map<std::string, std::string> now;
  for (const auto& f : fs::directory_iterator(out)) now[f.path().filename()] = slurp(f.path());
  EXPECT_TRUE(now == files) << "the last checkpoint must stay as it was";

  // A new run that cannot take one step leaves nothing behind.
  r = run_limited(args(dir_ + "/oom_fresh"), limit);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("out of memory at step 1"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ + "/oom_fresh"));
}

TEST_F(Cli, PresetsAreListedAndDefaulted) {
  Result r = run({"train", "--help"});
  ASSERT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("mb_demo    megabyte"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("7617024"), std::string::npos) << r.out;  // mb_demo's parameters
  expect_bad({"info", "--config", "demo"}, "--model");
  expect_bad({"train", "--model", "megabyte", "--config", "huge", "--data", dir_ + "/corpus", "--out", dir_ + "/x"},
             "presets: blt_cpu");
  r = run({"info", "--presets", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto presets = json::parse(r.out);
  EXPECT_GE(presets.size(), 15u);
  for (const auto& p : presets) EXPECT_GT(p["params"].get<int64_t>(), 0) << p.dump();
  // Without --config a model trains its demo preset.
  r = run({"train", "--model", "transformer", "--data", dir_ + "/corpus", "--out", dir_ + "/default", "--steps", "1",
           "--batch", "1", "--threads", "1", "--peak-flops", "1e11"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(slurp(dir_ + "/default/config.json"))["context"], 512);  // tf_demo
}

TEST_F(Cli, RangesVersionAndWarnings) {
  const std::vector<std::string> train{"train",  "--model",        "megabyte", "--config", "tiny",
                                       "--data", dir_ + "/corpus", "--out",    dir_ + "/x"};
  auto with = [&](std::vector<std::string> base, std::vector<std::string> more) {
    base.insert(base.end(), more.begin(), more.end());
    return base;
  };
  expect_bad(with(train, {"--seed", "-1"}), "--seed");
  expect_bad(with(train, {"--threads", "-1"}), "--threads");
  expect_bad(with(train, {"--adam-eps", "0"}), "--adam-eps");
  expect_bad({"eval", "--ckpt", dir_ + "/ckpt", "--data", dir_ + "/corpus", "--threads", "-2"}, "--threads");
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--seed", "-1"}, "--seed");
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--max-bytes", "0"}, "--max-bytes");
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--min-p", "1"}, "--min-p");
  expect_bad({"generate", "--ckpt", dir_ + "/ckpt", "--repetition-penalty", "0"}, "--repetition-penalty");
  expect_bad({"bench", "--threads", "-1"}, "--threads");
  EXPECT_FALSE(fs::exists(dir_ + "/x"));

  Result r = run({"--version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out.rfind("bytelm ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("commit"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("LibTorch"), std::string::npos) << r.out;
#ifdef BYTELM_BUILT_WITH_CUDA
  EXPECT_NE(r.out.find("CUDA compiled in ("), std::string::npos) << r.out;
#endif

  r = run({"train", "--model", "megabyte", "--config", "tiny", "--data", dir_ + "/corpus", "--out", dir_ + "/warm",
           "--steps", "2", "--warmup", "5", "--batch", "1", "--threads", "1", "--peak-flops", "1e11"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: --warmup 5 is longer than the run"), std::string::npos) << r.err;
}

// On a terminal the progress line shows '-' for values not measured yet, never nan.
TEST_F(Cli, ProgressOnATerminalShowsNoNan) {
  int master = -1;
  pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string out = dir_ + "/tty_run", data = dir_ + "/corpus";
    execl(BYTELM_BIN, BYTELM_BIN, "train", "--model", "megabyte", "--config", "tiny", "--data", data.c_str(), "--out",
          out.c_str(), "--steps", "4", "--log-every", "3", "--eval-every", "0", "--batch", "1", "--threads", "1",
          "--peak-flops", "1e11", static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string screen;
  char buf[4096];
  for (ssize_t n; (n = read(master, buf, sizeof buf)) > 0;) screen.append(buf, size_t(n));
  int status = 0;
  waitpid(pid, &status, 0);
  close(master);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << screen;
  EXPECT_NE(screen.find("loss - bpb - val -"), std::string::npos) << screen;  // step 1: nothing logged yet
  EXPECT_EQ(screen.find("nan"), std::string::npos) << screen;
}

TEST_F(Cli, ExistingRunIsNeverDamaged) {
  const std::string model = slurp(dir_ + "/ckpt/model.safetensors"), trainer = slurp(dir_ + "/ckpt/trainer.json");
  // A fresh run into an existing run's directory is refused; so is --resume with a different config.
  expect_bad({"train", "--model", "megabyte", "--config", "tiny", "--data", dir_ + "/corpus", "--out", dir_ + "/ckpt"},
             "--resume");
  expect_bad({"train", "--model", "megabyte", "--config", "demo", "--data", dir_ + "/corpus", "--out", dir_ + "/ckpt",
              "--resume"},
             "differs");
  expect_bad({"train", "--data", dir_ + "/corpus", "--out", dir_ + "/nothing", "--resume"}, "nothing to resume");
  EXPECT_EQ(slurp(dir_ + "/ckpt/model.safetensors"), model);
  EXPECT_EQ(slurp(dir_ + "/ckpt/trainer.json"), trainer);
}

// Ctrl-C (SIGINT) and SIGTERM (kill, torchrun, a preempting scheduler) stop training at the end of the step with
// a checkpoint, exit 128 + the signal, and --resume continues.
TEST_F(Cli, CtrlCAndSigtermSaveACheckpointAndResume) {
  for (int sig : {SIGINT, SIGTERM}) {
    const std::string out = dir_ + "/interrupted" + std::to_string(sig);
    pid_t pid = spawn({"train",
                       "--model",
                       "transformer",
                       "--config",
                       "tiny",
                       "--data",
                       dir_ + "/corpus",
                       "--out",
                       out,
                       "--steps",
                       "100000",
                       "--batch",
                       "2",
                       "--log-every",
                       "1",
                       "--ckpt-every",
                       "0",
                       "--threads",
                       "1",
                       "--peak-flops",
                       "1e11"},
                      dir_ + "/int.out", dir_ + "/int.err");
    // Wait until a few steps are logged, then interrupt.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      std::string m = slurp(out + "/metrics.jsonl");
      if (std::count(m.begin(), m.end(), '\n') >= 3) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_GT(pid, 0);  // never signal our own process group
    kill(pid, sig);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status)) << slurp(dir_ + "/int.err");
    EXPECT_EQ(WEXITSTATUS(status), 128 + sig) << slurp(dir_ + "/int.err");
    auto tj = nlohmann::json::parse(slurp(out + "/trainer.json"));
    int64_t step = tj["step"].get<int64_t>();
    EXPECT_GE(step, 3);
    Result r = run({"train", "--out", out, "--data", dir_ + "/corpus", "--resume", "--steps", std::to_string(step + 2),
                    "--batch", "2", "--threads", "1", "--peak-flops", "1e11"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(slurp(out + "/trainer.json"))["step"].get<int64_t>(), step + 2);
  }
}
