// cli_harness.h — running the bytelm binary from tests: spawn with captured stdout/stderr, the one-line
// error contract (exit 2, "bytelm: error: ..."), and a suite fixture with a tiny corpus and a trained
// MEGABYTE checkpoint shared by the tests of one binary.
#pragma once
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

extern char** environ;

namespace bytelm_test {

namespace fs = std::filesystem;

struct Result {
  int code;
  std::string out, err;
};

inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void write(const std::string& path, const std::string& s) { std::ofstream(path, std::ios::binary) << s; }

// Starts `argv` (argv[0] a path) with stdout/stderr redirected to files, in this process's environment or,
// when `env` is given, in exactly that one ("NAME=value" entries); returns its pid.
inline pid_t spawn_argv(std::vector<std::string> full, const std::string& out, const std::string& err,
                        std::vector<std::string>* env = nullptr) {
  std::vector<char*> argv, envp;
  for (auto& a : full) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (env) {
    for (auto& e : *env) envp.push_back(e.data());
    envp.push_back(nullptr);
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), env ? envp.data() : environ);
  posix_spawn_file_actions_destroy(&fa);
  EXPECT_EQ(rc, 0);
  return pid;
}

// Starts the bytelm binary with `args`.
inline pid_t spawn(const std::vector<std::string>& args, const std::string& out, const std::string& err) {
  std::vector<std::string> full{BYTELM_BIN};
  full.insert(full.end(), args.begin(), args.end());
  return spawn_argv(full, out, err);
}

inline Result wait_for(pid_t pid, const std::string& out, const std::string& err) {
  int status = 0;
  waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), slurp(out), slurp(err)};
}

// Runs bytelm with `args` to the end; its stdout and stderr pass through dir/stdout and dir/stderr.
inline Result run_in(const std::string& dir, const std::vector<std::string>& args) {
  const std::string out = dir + "/stdout", err = dir + "/stderr";
  return wait_for(spawn(args, out, err), out, err);
}

// A suite's fixture: a fresh directory `prefix`_PID under the temp folder with corpus/a.txt (`corpus_bytes`
// bytes of one repeated sentence) and dir/ckpt, a MEGABYTE of `config` (preset or file) trained 2 steps.
inline std::string make_trained_fixture(const std::string& prefix, int corpus_bytes, const std::string& config) {
  const std::string dir = (fs::temp_directory_path() / (prefix + "_" + std::to_string(getpid()))).string();
  fs::remove_all(dir);
  fs::create_directories(dir + "/corpus");
  std::string text;
  for (int i = 0; i < corpus_bytes; ++i) text += "call me ishmael. "[i % 17];
  write(dir + "/corpus/a.txt", text);
  const std::string cfg = config.find('{') == std::string::npos ? config : dir + "/model.json";
  if (cfg != config) write(cfg, config);
  Result r = run_in(dir, {"train", "--model", "megabyte", "--config", cfg, "--data", dir + "/corpus", "--out",
                          dir + "/ckpt", "--steps", "2", "--batch", "2", "--threads", "1", "--peak-flops", "1e11"});
  EXPECT_EQ(r.code, 0) << r.err;
  return dir;
}

class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { dir_ = make_trained_fixture("bytelm_cli", 3000, "tiny"); }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static Result run(const std::vector<std::string>& args) { return run_in(dir_, args); }

  // Runs bytelm with its address space limited to `kib` KiB (ulimit -v), e.g. to provoke out-of-memory.
  static Result run_limited(const std::vector<std::string>& args, int64_t kib) {
    std::vector<std::string> full{"/bin/sh", "-c", "ulimit -v " + std::to_string(kib) + " && exec \"$0\" \"$@\"",
                                  BYTELM_BIN};
    full.insert(full.end(), args.begin(), args.end());
    const std::string out = dir_ + "/stdout", err = dir_ + "/stderr";
    return wait_for(spawn_argv(full, out, err), out, err);
  }

  // The address space (KiB, to 32 MiB) bytelm needs just to start: `bytelm --version` under ulimit -v, by
  // bisection. LibTorch with CUDA maps several GB of libraries, so memory limits are set relative to this.
  static int64_t startup_kib() {
    static const int64_t kib = [] {
      int64_t lo = 0, hi = int64_t(64) << 20;  // 64 GiB
      while (hi - lo > (int64_t(32) << 10)) {
        const int64_t mid = (lo + hi) / 2;
        (run_limited({"--version"}, mid).code == 0 ? hi : lo) = mid;
      }
      return hi;
    }();
    return kib;
  }

  // Bad input: exit code 2 and exactly one line "bytelm: error: ..." containing `word`.
  static void expect_bad(const std::vector<std::string>& args, const std::string& word) {
    Result r = run(args);
    std::string cmd;
    for (auto& a : args) cmd += a + " ";
    EXPECT_EQ(r.code, 2) << cmd << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("bytelm: error: ", 0), 0u) << cmd << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << cmd << "\n" << r.err;
    EXPECT_NE(r.err.find(word), std::string::npos) << cmd << "\nexpected '" << word << "' in: " << r.err;
  }

  // A copy of the trained checkpoint whose model.safetensors is replaced by `bytes`.
  static std::string broken_ckpt(const std::string& name, const std::string& bytes) {
    std::string d = dir_ + "/" + name;
    fs::create_directories(d);
    fs::copy_file(dir_ + "/ckpt/config.json", d + "/config.json", fs::copy_options::overwrite_existing);
    write(d + "/model.safetensors", bytes);
    return d;
  }

  static std::string dir_;
  static bool cuda_available_;
};
inline std::string Cli::dir_;
// Test binaries of the CLI link no torch; a CUDA machine is recognised by the variable scripts/gpu/check.sh sets.
inline bool Cli::cuda_available_ =
    std::getenv("BYTELM_TEST_DEVICE") && std::string(std::getenv("BYTELM_TEST_DEVICE")) == "cuda";

}  // namespace bytelm_test
