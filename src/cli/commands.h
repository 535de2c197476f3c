// commands.h — the shared options layer under every subcommand: a subcommand registers its flags on the
// CLI11 app and returns what to run once they are parsed. One file per subcommand (train.cpp, eval.cpp,
// generate.cpp, info.cpp, patch.cpp, bench.cpp, tokenizer.cpp); main.cpp dispatches and prints errors.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <set>
#include <string>

#include "generate/speculative.h"
#include "util/inference.h"

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

// The flags of the shared inference settings (util/inference.h), each spelled and explained once; `which`
// is a mask of the ones a subcommand takes.
enum InferenceFlag : unsigned { kDevice = 1, kPrecision = 2, kDecode = 4, kDecodeWeights = 8, kThreads = 16 };
constexpr unsigned kDeviceFlags = kDevice | kPrecision | kThreads;
constexpr unsigned kAllInferenceFlags = kDeviceFlags | kDecode | kDecodeWeights;
void add_inference_flags(CLI::App* sub, InferenceSettings* s, unsigned which,
                         const std::string& threads_help = "CPU threads (0 = all cores)");

// --draft (a checkpoint or "self"), --draft-max and --draft-p-min: speculative decoding (generate, serve);
// `what`: how the subcommand decodes with a draft, appended to --draft's help.
void add_draft_flags(CLI::App* sub, std::string* draft, SpeculativeOptions* spec, const std::string& what);

// The names (without dashes) of the options of `sub` given on the command line.
std::set<std::string> given_options(const CLI::App* sub);

// The presets table shown under `train --help` and `info --help`.
const std::string& presets_footer();

}  // namespace bytelm::cli
