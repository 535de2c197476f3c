// serve_harness.h — `bytelm serve` as a child process for the tests: a tiny MEGABYTE trained for 2 steps
// with a long context (so streams last long enough to interrupt), servers on 127.0.0.1 with a free port
// (--port 0, read from stdout), SIGTERM with a bounded wait.
#pragma once
#include "cli/cli_harness.h"
#include "serve/http_client.h"

namespace bytelm_test {

struct ServerProcess {
  pid_t pid = -1;
  int port = 0;
  std::string out, err;
  int exit_code = -1;

  ~ServerProcess() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  // SIGTERM, then waits up to `seconds`; returns the exit code (-1: still running, killed).
  int terminate(int seconds = 30) {
    kill(pid, SIGTERM);
    return wait_exit(seconds);
  }
  int wait_exit(int seconds) {
    for (int i = 0; i < seconds * 20; ++i) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return exit_code;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }
};

class Serve : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Context 1024: a 1000-byte stream takes long enough to interrupt on any machine.
    dir_ = make_trained_fixture("bytelm_serve", 6000, R"({"model": "megabyte", "context": 1024, "patch_size": 4,
      "global": {"layers": 1, "width": 32, "heads": 2}, "local": {"layers": 1, "width": 32, "heads": 2}})");
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static Result run(const std::vector<std::string>& args) { return run_in(dir_, args); }

  // Starts `bytelm serve --ckpt <the model> --port 0 ...` and waits until it listens (and, if `ready`,
  // until /health says 200). Fails the test if that takes over a minute.
  static std::unique_ptr<ServerProcess> start(std::vector<std::string> more = {}, bool ready = true,
                                              const std::string& ckpt = "") {
    static int n = 0;
    auto s = std::make_unique<ServerProcess>();
    s->out = dir_ + "/server" + std::to_string(++n) + ".out";
    s->err = dir_ + "/server" + std::to_string(n) + ".err";
    std::vector<std::string> args{"serve",     "--ckpt", ckpt.empty() ? dir_ + "/ckpt" : ckpt, "--port", "0",
                                  "--threads", "1"};
    args.insert(args.end(), more.begin(), more.end());
    s->pid = spawn(args, s->out, s->err);
    const std::string tag = "listening on http://127.0.0.1:";
    for (int i = 0; i < 1200 && s->port == 0; ++i) {
      const std::string o = slurp(s->out);
      const size_t at = o.find(tag);
      if (at != std::string::npos && o.find('\n', at) != std::string::npos)
        s->port = std::atoi(o.c_str() + at + tag.size());
      if (s->port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_GT(s->port, 0) << slurp(s->err);
    for (int i = 0; ready && s->port > 0 && i < 1200; ++i) {
      if (http(s->port, "GET", "/health").status == 200) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return s;
  }

  static std::string dir_;
};
inline std::string Serve::dir_;

// The events of one SSE response, in order ("[DONE]" included).
inline std::vector<std::string> sse_events(int port, const std::string& body) {
  std::vector<std::string> events;
  sse(port, body, [&](const std::string& e) {
    events.push_back(e);
    return true;
  });
  return events;
}

// The exact bytes of a choice: its `bytes` when present, else its text.
inline std::string choice_bytes(const nlohmann::json& c) {
  if (!c.contains("bytes")) return c["text"].get<std::string>();
  std::string s;
  for (const auto& b : c["bytes"]) s.push_back(char(b.get<int>()));
  return s;
}

// Concatenated bytes and text of a stream's chunks, its finish_reason, and whether it ended with [DONE].
struct Streamed {
  std::string bytes, text, finish_reason;
  bool done = false, error = false;
  int chunks = 0;
};
inline Streamed collect(const std::vector<std::string>& events) {
  Streamed s;
  for (const auto& e : events) {
    if (e == "[DONE]") {
      s.done = true;
      continue;
    }
    auto j = nlohmann::json::parse(e);  // throws on invalid UTF-8 or bad JSON
    if (j.contains("error")) {
      s.error = true;
      continue;
    }
    for (const auto& c : j["choices"]) {
      s.bytes += choice_bytes(c);
      s.text += c["text"].get<std::string>();
      if (!c["finish_reason"].is_null()) s.finish_reason = c["finish_reason"];
      ++s.chunks;
    }
  }
  return s;
}

}  // namespace bytelm_test
