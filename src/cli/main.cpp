// main.cpp — the bytelm command-line tool: a thin layer over the library. Each subcommand lives in its own
// file (src/cli/<name>.cpp) over the shared options layer (commands.h); this file dispatches and keeps the
// error contract: bad input prints one line "bytelm: error: ..." and exits with code 2; a failure during a
// run (out of memory) exits 1; --help lists every option with its default.
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "git_version.h"
#include "util/error.h"
#include "util/memory.h"
#include "util/platform.h"
#include "util/text.h"

namespace {

// Under torchrun (torch.distributed.elastic), the launcher names a file in TORCHELASTIC_ERROR_FILE where a
// failing worker leaves its error, in the layout of elastic's ErrorHandler.record_exception; the launcher's
// summary then shows the cause and the time it happened instead of "(no error file)".
void write_elastic_error_file(const std::string& line) {
  const char* path = std::getenv("TORCHELASTIC_ERROR_FILE");
  if (!path || !*path) return;
  const nlohmann::json data{
      {"message",
       {{"message", "bytelm: " + line},
        {"extraInfo", {{"py_callstack", ""}, {"timestamp", std::to_string(std::time(nullptr))}}}}}};
  std::ofstream(path) << data.dump() << "\n";
}

// One line, printable: bytelm's own errors may quote bytes of hostile files (escaped by printable_line); other
// exceptions lose anything after their first newline (e.g. a LibTorch backtrace).
int fail(const std::string& msg, int code, bool first_line_only = false) {
  const std::string line = bytelm::printable_line(first_line_only ? msg.substr(0, msg.find('\n')) : msg);
  std::fprintf(stderr, "bytelm: error: %s\n", line.c_str());
  write_elastic_error_file(line);
  return code;
}

// Corpora and weights are memory-mapped: a file truncated by another process while bytelm reads it raises
// SIGBUS at the first access past its new end. Keep the error contract (one line, exit 2) instead of dying
// with a core dump; checkpoints are committed whole (train/run_dir.h), so the last one stays usable.
void on_sigbus(int) {
  static const char msg[] =
      "bytelm: error: a memory-mapped file (data or checkpoint) shrank while it was being read (SIGBUS); "
      "was it truncated or replaced in place?\n";
  const ssize_t ignored = write(2, msg, sizeof msg - 1);
  (void)ignored;
  _exit(2);
}

std::string version_text() {
  return std::string("bytelm ") + BYTELM_VERSION + " (commit " + BYTELM_GIT_COMMIT + "), " + bytelm::torch_build_info();
}

}  // namespace

int main(int argc, char** argv) {
  // libgomp reads OMP_WAIT_POLICY when it loads, before main. Unless the user chose a policy, set PASSIVE
  // and re-execute ourselves once: idle OpenMP threads then sleep instead of spinning, which matters when
  // processes share cores (data-parallel ranks, serve beside other work). For one process the policy made
  // no measured difference with the wheel's MKL (bench, ACTIVE vs PASSIVE: 0.90-1.07 per figure; with
  // OpenBLAS, whose own threads fought OpenMP's, spinning was 1.2-2.5x slower).
  if (!std::getenv("OMP_WAIT_POLICY")) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);  // returns only on failure; then carry on as we are
  }
  std::signal(SIGBUS, on_sigbus);
  bytelm::configure_allocator();  // malloc keeps freed tensor memory for reuse (see util/memory.h)
  CLI::App app{"bytelm: tokenizer-free language models on raw bytes (byte Transformer, MEGABYTE, BLT)"};
  app.option_defaults()->always_capture_default();
  app.require_subcommand(1);
  app.fallthrough(false);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  app.set_version_flag(
      "--version", [] { return version_text(); }, "Project version, git commit, LibTorch version, CUDA or not");
  namespace cli = bytelm::cli;
  const std::vector<cli::Command> commands{cli::add_train(app),     cli::add_eval(app),  cli::add_generate(app),
                                           cli::add_info(app),      cli::add_patch(app), cli::add_bench(app),
                                           cli::add_tokenizer(app), cli::add_serve(app), cli::add_experiment(app)};

  // CLI11 would report a missing subcommand before an unknown word; name the unknown word instead.
  bool known = false;
  for (const auto& c : commands) known = known || (argc > 1 && c.app->get_name() == argv[1]);
  if (argc > 1 && argv[1][0] != '-' && !known)
    return fail(std::string("unknown subcommand '") + argv[1] + "' (see --help)", 2);
  // Required options are checked by each command after parsing, so an unknown flag is reported first.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& err) {
    if (err.get_exit_code() == 0) return app.exit(err);  // --help, --version
    return fail(std::string(err.what()) + " (see --help)", 2, true);
  }
  try {
    for (const auto& c : commands)
      if (*c.app) return c.run();
  } catch (const bytelm::Error& err) {
    return fail(err.what(), err.code);
  } catch (const std::exception& err) {
    return fail(std::string("internal error: ") + err.what(), 1, true);
  }
  return 0;
}
