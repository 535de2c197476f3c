// test_data_parallel.cpp — `bytelm train` over 2 local processes on c10d Gloo (127.0.0.1, a free port),
// started by the test itself with RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT as a launcher would set them:
// 2 x 4 equals 1 x 8 (also with accumulation), ZeRO-1 equals the unsharded run, --resume at another world
// size continues the same run, ranks launched with different settings all stop with exit 2, a dead or hung
// peer makes the survivor exit non-zero within a bounded time with its last checkpoint intact, and under
// torchrun --max-restarts a killed worker's group restarts and finishes the run (skipped without torchrun).
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmath>

#include "cli/cli_harness.h"
#include "io/safetensors.h"

using namespace bytelm_test;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// A port that was free a moment ago (bind port 0, read it back, close).
int free_port() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

// Starts argv with this process's environment minus any launcher variables, plus `extra`.
pid_t spawn_with_env(std::vector<std::string> argv, const std::map<std::string, std::string>& extra,
                     const std::string& out, const std::string& err) {
  static const char* launcher[] = {"RANK=",        "WORLD_SIZE=",  "LOCAL_RANK=",   "LOCAL_WORLD_SIZE=",
                                   "MASTER_ADDR=", "MASTER_PORT=", "TORCHELASTIC_", "OMPI_COMM_WORLD_",
                                   "SLURM_"};
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    bool drop = false;
    for (const char* p : launcher) drop = drop || std::strncmp(*e, p, std::strlen(p)) == 0;
    if (!drop) env.push_back(*e);
  }
  for (const auto& [k, v] : extra) env.push_back(k + "=" + v);
  return spawn_argv(std::move(argv), out, err, &env);
}

// Waits at most `seconds` (then kills it: a hang is a failure); the exit code, or 128 + signal.
int wait_bounded(pid_t pid, double seconds) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      ADD_FAILURE() << "pid " << pid << " still running after " << seconds << " s; killed";
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::vector<double> column(const std::string& metrics, const char* key) {
  std::vector<double> out;
  std::istringstream in(slurp(metrics));
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line);
    if (j.contains(key)) out.push_back(j[key].get<double>());
  }
  return out;
}

// The largest absolute difference between two safetensors files' F32 tensors (same names required).
double max_abs_diff(const std::string& a, const std::string& b) {
  bytelm::SafetensorsReader ra(a), rb(b);
  EXPECT_EQ(ra.tensors().size(), rb.tensors().size());
  double worst = 0;
  for (const auto& [name, info] : ra.tensors()) {
    if (!rb.has(name)) {
      ADD_FAILURE() << name << " missing in " << b;
      continue;
    }
    std::vector<float> x(size_t(info.numel())), y(size_t(info.numel()));
    std::memcpy(x.data(), ra.data(name), x.size() * 4);
    std::memcpy(y.data(), rb.data(name), y.size() * 4);
    for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, double(std::fabs(x[i] - y[i])));
  }
  return worst;
}

void expect_close(const std::vector<double>& a, const std::vector<double>& b, double rtol, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], rtol * std::fabs(b[i])) << what << " #" << i;
}

// CUDA devices visible to this process, as LibTorch counts them (asked of `bytelm --version`'s output: the
// test binary itself does not link LibTorch).
int torch_cuda_device_count() {
  static int n = [] {
    const std::string out = fs::temp_directory_path() / ("bytelm_dp_version_" + std::to_string(getpid()));
    const std::string v = wait_for(spawn({"--version"}, out, out + ".err"), out, out + ".err").out;
    const auto at = v.find("CUDA compiled in (");
    return at == std::string::npos ? 0 : std::atoi(v.c_str() + at + std::strlen("CUDA compiled in ("));
  }();
  return n;
}

class DataParallel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = (fs::temp_directory_path() / ("bytelm_dp_" + std::to_string(getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_ + "/corpus");
    // Words in a pseudo-random order: enough structure for the loss to move, enough variety for its rows to differ.
    const char* words[] = {"the ",     "whale ", "sea ", "ship ",  "call ", "me ",
                           "ishmael ", "of ",    "and ", "white ", ". "};
    std::string text;
    uint32_t x = 12345;
    while (text.size() < 12000) {
      x = x * 1103515245u + 12345u;
      text += words[(x >> 16) % 11];
    }
    write(dir_ + "/corpus/a.txt", text);
    // The one-process reference: batch 8 (= 2 ranks x 4).
    ASSERT_EQ(run_ranks(1, "ref", {"--batch", "8"}), std::vector<int>{0});
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static std::vector<std::string> train_args(const std::string& out, const std::vector<std::string>& extra) {
    std::vector<std::string> a{BYTELM_BIN,       "train",
                               "--model",        "transformer",
                               "--config",       "tiny",
                               "--data",         dir_ + "/corpus",
                               "--out",          dir_ + "/" + out,
                               "--steps",        "8",
                               "--lr",           "0.003",
                               "--warmup",       "2",
                               "--seed",         "11",
                               "--threads",      "1",
                               "--peak-flops",   "1e11",
                               "--log-every",    "1",
                               "--eval-every",   "4",
                               "--eval-batches", "2",
                               "--dist-timeout", "20"};
    // A flag given in `extra` replaces the default above (CLI11 refuses a flag given twice).
    for (size_t i = 0; i + 1 < extra.size(); ++i) {
      if (extra[i].rfind("--", 0) != 0) continue;
      auto at = std::find(a.begin(), a.end(), extra[i]);
      if (at != a.end() && at + 1 != a.end() && (at + 1)->rfind("--", 0) != 0) a.erase(at, at + 2);
    }
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  static std::map<std::string, std::string> rank_env(int rank, int world, int port) {
    return {{"RANK", std::to_string(rank)},       {"WORLD_SIZE", std::to_string(world)},
            {"LOCAL_RANK", std::to_string(rank)}, {"LOCAL_WORLD_SIZE", std::to_string(world)},
            {"MASTER_ADDR", "127.0.0.1"},         {"MASTER_PORT", std::to_string(port)}};
  }

  // Starts `world` ranks of one run (world 1: a plain process, no launcher variables).
  static std::vector<pid_t> start_ranks(int world, const std::string& out, const std::vector<std::string>& extra,
                                        const std::vector<std::string>& rank1_extra = {}) {
    const int port = free_port();
    std::vector<pid_t> pids;
    for (int r = 0; r < world; ++r) {
      std::vector<std::string> mine = extra;
      if (r == 1) mine.insert(mine.end(), rank1_extra.begin(), rank1_extra.end());
      auto args = train_args(out, mine);
      const std::string log = dir_ + "/" + out + ".rank" + std::to_string(r);
      pids.push_back(spawn_with_env(args, world > 1 ? rank_env(r, world, port) : std::map<std::string, std::string>{},
                                    log + ".out", log + ".err"));
    }
    return pids;
  }

  static std::vector<int> run_ranks(int world, const std::string& out, const std::vector<std::string>& extra,
                                    const std::vector<std::string>& rank1_extra = {}) {
    std::vector<int> codes;
    for (pid_t p : start_ranks(world, out, extra, rank1_extra)) codes.push_back(wait_bounded(p, 120));
    return codes;
  }

  static std::string err_of(const std::string& out, int rank) {
    return slurp(dir_ + "/" + out + ".rank" + std::to_string(rank) + ".err");
  }
  static std::string path(const std::string& rel) { return dir_ + "/" + rel; }

  // Polls until the run's trainer.json records a step >= `step` (false after `seconds`).
  static bool wait_for_checkpoint(const std::string& out, int64_t step, double seconds) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < deadline) {
      try {
        if (json::parse(slurp(path(out + "/trainer.json"))).at("step").get<int64_t>() >= step) return true;
      } catch (...) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  static std::string dir_;
};
std::string DataParallel::dir_;

}  // namespace

TEST_F(DataParallel, TwoRanksOfFourEqualOneProcessOfEightAndZeroOneEqualsUnsharded) {
  ASSERT_EQ(run_ranks(2, "dp", {"--batch", "4"}), (std::vector<int>{0, 0})) << err_of("dp", 0) << err_of("dp", 1);
  const auto loss = column(path("dp/metrics.jsonl"), "loss"), ref = column(path("ref/metrics.jsonl"), "loss");
  ASSERT_EQ(ref.size(), 8u);
  expect_close(loss, ref, 1e-5, "training loss");  // one line per step: rank 1 writes no metrics
  expect_close(column(path("dp/metrics.jsonl"), "val_bpb"), column(path("ref/metrics.jsonl"), "val_bpb"), 1e-5,
               "validation bpb");
  expect_close(column(path("dp/metrics.jsonl"), "grad_norm"), column(path("ref/metrics.jsonl"), "grad_norm"), 1e-4,
               "gradient norm");
  EXPECT_LT(max_abs_diff(path("dp/model.safetensors"), path("ref/model.safetensors")), 1e-5);
  EXPECT_LT(max_abs_diff(path("dp/optimizer.safetensors"), path("ref/optimizer.safetensors")), 1e-5);
  const json rec = json::parse(slurp(path("dp/trainer.json")));
  EXPECT_EQ(rec["world_size"], 2);
  EXPECT_EQ(rec["batch"], 4);
  // Rank 0 reports for the group; rank 1 prints nothing about progress.
  EXPECT_NE(err_of("dp", 0).find("data-parallel over 2 processes"), std::string::npos) << err_of("dp", 0);
  EXPECT_EQ(err_of("dp", 1).find("step 8/8"), std::string::npos) << err_of("dp", 1);

  // Accumulation: one reduce per optimiser step. 2 ranks x 2 rows x 2 micro-batches = 1 process x 4 x 2.
  ASSERT_EQ(run_ranks(1, "acc1", {"--batch", "4", "--accum", "2"}), std::vector<int>{0}) << err_of("acc1", 0);
  ASSERT_EQ(run_ranks(2, "acc2", {"--batch", "2", "--accum", "2"}), (std::vector<int>{0, 0})) << err_of("acc2", 0);
  expect_close(column(path("acc2/metrics.jsonl"), "loss"), column(path("acc1/metrics.jsonl"), "loss"), 1e-5,
               "accumulated loss");
  EXPECT_LT(max_abs_diff(path("acc2/model.safetensors"), path("acc1/model.safetensors")), 1e-5);

  // ZeRO-1 (--shard-optimizer) equals the unsharded 2-rank run above (one test, to reuse that run).
  ASSERT_EQ(run_ranks(2, "z1", {"--batch", "4", "--shard-optimizer"}), (std::vector<int>{0, 0}))
      << err_of("z1", 0) << err_of("z1", 1);
  // Each rank holds the moments of half the values (the first rank's range is ceil(N / 2)).
  const std::string err = err_of("z1", 0);
  const auto at = err.find("ZeRO-1: AdamW moments ");
  ASSERT_NE(at, std::string::npos) << err;
  long owned = 0, total = 0;
  ASSERT_EQ(std::sscanf(err.c_str() + at, "ZeRO-1: AdamW moments %ld of %ld values per rank", &owned, &total), 2)
      << err;
  EXPECT_GT(total, 50000);
  EXPECT_EQ(owned, (total + 1) / 2);
  expect_close(column(path("z1/metrics.jsonl"), "loss"), column(path("dp/metrics.jsonl"), "loss"), 1e-6, "loss");
  EXPECT_LT(max_abs_diff(path("z1/model.safetensors"), path("dp/model.safetensors")), 1e-6);
  // The moments were gathered into the usual unsharded file.
  EXPECT_LT(max_abs_diff(path("z1/optimizer.safetensors"), path("dp/optimizer.safetensors")), 1e-6);
}

// H-Net: its chunk selection and inner network per rank give the one-process run. Its ratio loss is computed per
// micro-batch (the paper's rule), so the equality holds with the ratio loss off; with it on, both run.
TEST_F(DataParallel, HnetTwoRanksOfFourEqualOneProcessOfEight) {
  json cfg = json::parse(slurp(BYTELM_SOURCE_DIR "/configs/hnet_tiny.json"));
  cfg["ratio_loss_weight"] = 0.0;
  write(path("hnet_no_ratio.json"), cfg.dump());
  const std::vector<std::string> hnet{"--model", "hnet", "--config", path("hnet_no_ratio.json")};
  auto with = [&](std::vector<std::string> a, const std::vector<std::string>& more) {
    a.insert(a.end(), more.begin(), more.end());
    return a;
  };
  ASSERT_EQ(run_ranks(1, "h_ref", with(hnet, {"--batch", "8"})), std::vector<int>{0}) << err_of("h_ref", 0);
  ASSERT_EQ(run_ranks(2, "h_dp", with(hnet, {"--batch", "4"})), (std::vector<int>{0, 0})) << err_of("h_dp", 0);
  expect_close(column(path("h_dp/metrics.jsonl"), "loss"), column(path("h_ref/metrics.jsonl"), "loss"), 1e-5,
               "H-Net training loss");
  EXPECT_LT(max_abs_diff(path("h_dp/model.safetensors"), path("h_ref/model.safetensors")), 1e-5);
  ASSERT_EQ(run_ranks(2, "h_ratio", {"--model", "hnet", "--batch", "4"}), (std::vector<int>{0, 0}))
      << err_of("h_ratio", 0);
}

TEST_F(DataParallel, ResumeAtAnotherWorldSizeContinuesTheSameRun) {
  // 2 ranks x 4 stop at step 4 (ZeRO-1, to show its checkpoint resumes anywhere); one process resumes with
  // --out alone (its batch becomes 8) and must match the uninterrupted 1 x 8 run.
  ASSERT_EQ(run_ranks(2, "rs", {"--batch", "4", "--exit-after", "4", "--shard-optimizer"}), (std::vector<int>{0, 0}))
      << err_of("rs", 0);
  EXPECT_EQ(json::parse(slurp(path("rs/trainer.json")))["step"], 4);
  pid_t p =
      spawn_with_env({BYTELM_BIN, "train", "--out", path("rs"), "--resume", "--peak-flops", "1e11", "--threads", "1"},
                     {}, path("rs.resume.out"), path("rs.resume.err"));
  ASSERT_EQ(wait_bounded(p, 120), 0) << slurp(path("rs.resume.err"));
  const json rec = json::parse(slurp(path("rs/trainer.json")));
  EXPECT_EQ(rec["step"], 8);
  EXPECT_EQ(rec["batch"], 8);
  EXPECT_EQ(rec["world_size"], 1);
  expect_close(column(path("rs/metrics.jsonl"), "loss"), column(path("ref/metrics.jsonl"), "loss"), 1e-5, "loss");
  EXPECT_LT(max_abs_diff(path("rs/model.safetensors"), path("ref/model.safetensors")), 1e-5);
}

TEST_F(DataParallel, RanksWithDifferentSettingsAllStopWithExit2) {
  const auto codes = run_ranks(2, "mismatch", {"--batch", "4"}, {"--lr", "0.002"});
  EXPECT_EQ(codes, (std::vector<int>{2, 2}));
  for (int r = 0; r < 2; ++r) {
    const std::string err = err_of("mismatch", r);
    EXPECT_EQ(err.rfind("bytelm: error: ranks were launched with different options", 0), 0u) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  }
  // One rank failing its set-up (its --data does not exist) stops the other too, with exit 2.
  const auto codes2 = run_ranks(2, "onefails", {"--batch", "4"}, {"--data", path("missing")});
  EXPECT_EQ(codes2, (std::vector<int>{2, 2}));
  EXPECT_NE(err_of("onefails", 1).find("missing"), std::string::npos) << err_of("onefails", 1);
  EXPECT_NE(err_of("onefails", 0).find("rank 1 failed to start"), std::string::npos) << err_of("onefails", 0);
  EXPECT_FALSE(fs::exists(path("onefails/trainer.json")));
}

TEST_F(DataParallel, BadEnvironmentIsOneLineAndExit2) {
  auto one = [&](const std::map<std::string, std::string>& env, const std::string& word) {
    pid_t p = spawn_with_env(train_args("badenv", {}), env, path("badenv.out"), path("badenv.err"));
    EXPECT_EQ(wait_bounded(p, 60), 2);
    const std::string err = slurp(path("badenv.err"));
    EXPECT_EQ(err.rfind("bytelm: error: environment: ", 0), 0u) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    EXPECT_NE(err.find(word), std::string::npos) << err;
  };
  one({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29999"}}, "RANK=2");
  one({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "29999"}}, "MASTER_ADDR");
  one({{"RANK", "0"}, {"WORLD_SIZE", "two"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29999"}}, "WORLD_SIZE");
  EXPECT_FALSE(fs::exists(path("badenv")));
  // Under torchrun the error also goes to TORCHELASTIC_ERROR_FILE, in elastic's layout.
  const std::string error_file = path("elastic_error.json");
  one({{"RANK", "2"},
       {"WORLD_SIZE", "2"},
       {"MASTER_ADDR", "127.0.0.1"},
       {"MASTER_PORT", "29999"},
       {"TORCHELASTIC_ERROR_FILE", error_file}},
      "RANK=2");
  const json e = json::parse(slurp(error_file));
  EXPECT_EQ(e["message"]["message"].get<std::string>().rfind("bytelm: environment: ", 0), 0u) << e;
  EXPECT_GT(std::stoll(e["message"]["extraInfo"]["timestamp"].get<std::string>()), 0) << e;
}

// CUDA ranks form an NCCL group on cuda:LOCAL_RANK. Without a GPU both ranks refuse at once, in one line,
// before any group is formed (no port is waited on); --device cuda:N under a launcher is refused anywhere.
TEST_F(DataParallel, CudaRanksNeedTheirOwnVisibleGpu) {
  const auto codes = run_ranks(2, "nccl_nogpu", {"--batch", "4", "--device", "cuda"});
  for (int r = 0; r < 2; ++r) {
    const std::string err = err_of("nccl_nogpu", r);
    if (torch_cuda_device_count() >= 2) continue;  // a real NCCL run: see the next test
    EXPECT_EQ(codes[size_t(r)], 2) << err;
    EXPECT_EQ(err.rfind("bytelm: error: --device cuda: ", 0), 0u) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  }
  const auto pinned = run_ranks(2, "nccl_pinned", {"--batch", "4", "--device", "cuda:0"});
  for (int r = 0; r < 2; ++r) {
    const std::string err = err_of("nccl_pinned", r);
    EXPECT_EQ(pinned[size_t(r)], 2) << err;
    EXPECT_NE(err.find("--device cuda:0: "), std::string::npos) << err;
  }
}

// With two GPUs: 2 NCCL ranks of 4 rows match one CUDA process of 8 (fp32, within GPU reduction-order noise).
TEST_F(DataParallel, TwoNcclRanksOfFourEqualOneCudaProcessOfEight) {
  if (torch_cuda_device_count() < 2)
    GTEST_SKIP() << "needs 2 CUDA devices (NCCL across GPUs); this machine has " << torch_cuda_device_count();
  ASSERT_EQ(run_ranks(1, "cuda_ref", {"--batch", "8", "--device", "cuda", "--precision", "fp32"}), std::vector<int>{0});
  ASSERT_EQ(run_ranks(2, "nccl", {"--batch", "4", "--device", "cuda", "--precision", "fp32"}), (std::vector<int>{0, 0}))
      << err_of("nccl", 0) << err_of("nccl", 1);
  expect_close(column(path("nccl/metrics.jsonl"), "loss"), column(path("cuda_ref/metrics.jsonl"), "loss"), 1e-4,
               "loss");
  EXPECT_LT(max_abs_diff(path("nccl/model.safetensors"), path("cuda_ref/model.safetensors")), 1e-4);
}

TEST_F(DataParallel, DeadPeerEndsTheRunWithinBoundsAndKeepsTheCheckpoint) {
  // Rank 1 is killed (SIGKILL) after a checkpoint; rank 0 must exit non-zero soon, its checkpoint loadable.
  auto pids = start_ranks(2, "dead", {"--batch", "4", "--steps", "100000", "--ckpt-every", "3", "--dist-timeout", "5"});
  ASSERT_TRUE(wait_for_checkpoint("dead", 3, 90)) << err_of("dead", 0);
  kill(pids[1], SIGKILL);
  const auto t0 = Clock::now();
  const int code = wait_bounded(pids[0], 60);
  const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
  wait_bounded(pids[1], 10);
  EXPECT_NE(code, 0);
  EXPECT_LT(waited, 30.0);
  const std::string err = err_of("dead", 0);
  EXPECT_NE(err.find("bytelm: error: distributed"), std::string::npos) << err;
  // The last checkpoint is whole: one process continues it.
  const int64_t step = json::parse(slurp(path("dead/trainer.json")))["step"].get<int64_t>();
  EXPECT_EQ(step % 3, 0);
  pid_t p = spawn_with_env({BYTELM_BIN, "train", "--out", path("dead"), "--resume", "--steps", std::to_string(step + 1),
                            "--peak-flops", "1e11", "--threads", "1"},
                           {}, path("dead.resume.out"), path("dead.resume.err"));
  EXPECT_EQ(wait_bounded(p, 120), 0) << slurp(path("dead.resume.err"));
}

TEST_F(DataParallel, HungPeerTimesOutAfterDistTimeout) {
  // Rank 1 stops answering (SIGSTOP): rank 0 must give up after --dist-timeout (3 s), not hang.
  auto pids = start_ranks(2, "hung", {"--batch", "4", "--steps", "100000", "--ckpt-every", "3", "--dist-timeout", "3"});
  ASSERT_TRUE(wait_for_checkpoint("hung", 3, 90)) << err_of("hung", 0);
  kill(pids[1], SIGSTOP);
  const auto t0 = Clock::now();
  const int code = wait_bounded(pids[0], 60);
  const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
  kill(pids[1], SIGKILL);
  wait_bounded(pids[1], 10);
  EXPECT_NE(code, 0);
  EXPECT_GT(waited, 2.0);   // it did wait for the peer
  EXPECT_LT(waited, 25.0);  // but only about --dist-timeout
  EXPECT_NE(err_of("hung", 0).find("bytelm: error: distributed"), std::string::npos) << err_of("hung", 0);
  bytelm::SafetensorsReader model(path("hung/model.safetensors"));
  EXPECT_EQ(model.metadata().at("step"), json::parse(slurp(path("hung/trainer.json")))["step"].dump());
}

namespace {

// Pids of processes whose environment holds every one of `vars` ("NAME=value").
std::vector<pid_t> pids_with_env(const std::vector<std::string>& vars) {
  std::vector<pid_t> out;
  for (const auto& d : fs::directory_iterator("/proc")) {
    const std::string name = d.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string env = slurp(d.path().string() + "/environ");
    std::vector<std::string> entries;
    for (size_t i = 0; i < env.size();) {
      size_t j = env.find('\0', i);
      if (j == std::string::npos) j = env.size();
      entries.push_back(env.substr(i, j - i));
      i = j + 1;
    }
    bool all = !entries.empty();
    for (const auto& v : vars) all = all && std::find(entries.begin(), entries.end(), v) != entries.end();
    if (all) out.push_back(pid_t(std::stol(name)));
  }
  return out;
}

}  // namespace

TEST_F(DataParallel, TorchrunRestartsAKilledWorkerAndTheRunFinishes) {
  // torchrun from the Python whose torch bytelm links (the checkout's .venv, or the GPU machine's python3).
  const std::string python = BYTELM_PYTHON;
  if (std::system(("'" + python + "' -c 'import torch.distributed.run' 2>/dev/null").c_str()) != 0)
    GTEST_SKIP() << python << " has no torch.distributed.run: torchrun absent";
  const std::string tag = "BYTELM_DP_TEST=" + std::to_string(getpid());
  auto args = train_args("elastic", {"--batch", "4", "--steps", "40", "--ckpt-every", "5", "--eval-every", "0"});
  // Static rendezvous on a free port: torchrun's agent hosts the store (TORCHELASTIC_USE_AGENT_STORE=True).
  std::vector<std::string> cmd{python,
                               "-m",
                               "torch.distributed.run",
                               "--nnodes",
                               "1",
                               "--nproc-per-node",
                               "2",
                               "--master-addr",
                               "127.0.0.1",
                               "--master-port",
                               std::to_string(free_port()),
                               "--max-restarts",
                               "1",
                               "--monitor-interval",
                               "1",
                               "--no-python"};
  cmd.insert(cmd.end(), args.begin(), args.end());
  pid_t agent = spawn_with_env(cmd, {{tag.substr(0, tag.find('=')), tag.substr(tag.find('=') + 1)}},
                               path("elastic.out"), path("elastic.err"));
  ASSERT_TRUE(wait_for_checkpoint("elastic", 5, 120)) << slurp(path("elastic.err"));
  // Kill the first attempt's rank 1 by its pid.
  auto victims = pids_with_env({tag, "RANK=1", "TORCHELASTIC_RESTART_COUNT=0"});
  ASSERT_EQ(victims.size(), 1u) << slurp(path("elastic.err"));
  const int64_t killed_after = json::parse(slurp(path("elastic/trainer.json")))["step"].get<int64_t>();
  kill(victims[0], SIGKILL);
  ASSERT_EQ(wait_bounded(agent, 180), 0) << slurp(path("elastic.err"));
  const std::string err = slurp(path("elastic.err"));
  EXPECT_NE(err.find("restart 1 of the workers: resuming"), std::string::npos) << err;
  const json rec = json::parse(slurp(path("elastic/trainer.json")));
  EXPECT_EQ(rec["step"], 40);
  EXPECT_EQ(rec["world_size"], 2);
  // The restarted group resumed from a checkpoint rather than starting again: step 1 was trained once.
  const auto steps = column(path("elastic/metrics.jsonl"), "step");
  EXPECT_GE(killed_after, 5);
  EXPECT_EQ(std::count(steps.begin(), steps.end(), 1.0), 1);
  EXPECT_EQ(steps.back(), 40);
}
