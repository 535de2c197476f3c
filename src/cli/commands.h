// commands.h — the shared options layer under every subcommand: a subcommand registers its flags on the
// CLI11 app and returns what to run once they are parsed. One file per subcommand (train.cpp, eval.cpp,
// generate.cpp, info.cpp, patch.cpp, bench.cpp, tokenizer.cpp); main.cpp dispatches and prints errors.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <set>
#include <string>

namespace bytelm::cli {

struct Command {
  CLI::App* app = nullptr;   // the subcommand; parsed when *app is true
  std::function<int()> run;  // returns the exit code; throws Error on bad input
};

Command add_train(CLI::App& app);
Command add_eval(CLI::App& app);
Command add_generate(CLI::App& app);
Command add_info(CLI::App& app);
Command add_patch(CLI::App& app);
Command add_bench(CLI::App& app);
Command add_tokenizer(CLI::App& app);
Command add_serve(CLI::App& app);
Command add_experiment(CLI::App& app);

// --device, --precision (when `precision` is not null) and --threads, spelled the same everywhere.
void add_device_flags(CLI::App* sub, std::string* device, std::string* precision, int* threads,
                      const std::string& threads_help = "CPU threads (0 = all cores)");

// The names (without dashes) of the options of `sub` given on the command line.
std::set<std::string> given_options(const CLI::App* sub);

// The presets table shown under `train --help` and `info --help`.
const std::string& presets_footer();

}  // namespace bytelm::cli
