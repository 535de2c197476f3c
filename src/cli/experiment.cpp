// experiment.cpp — `bytelm experiment run PLAN --out DIR` (compute-matched runs of a plan, resumable) and
// `bytelm experiment report DIR --out REPORT` (HTML + Markdown with plots). See src/experiment/.
#include <memory>

#include "cli/commands.h"
#include "experiment/report.h"
#include "experiment/runner.h"

namespace bytelm::cli {

Command add_experiment(CLI::App& app) {
  auto* e = app.add_subcommand("experiment", "Compute-matched experiment plans and their report");
  e->require_subcommand(1);
  auto plan = std::make_shared<std::string>();
  auto ro = std::make_shared<experiment::RunnerOptions>();
  auto* run = e->add_subcommand("run",
                                "Train every run of a plan to its FLOPs budget, evaluate and record it "
                                "(done runs are skipped, interrupted ones resumed)");
  run->add_option("plan", *plan, "Plan JSON (e.g. configs/experiments/quick.json)")->required();
  run->add_option("--out", ro->out,
                  "Experiment directory (required): runs/NAME/record.json, compressors.json, robustness/");
  run->add_flag("--quick", ro->quick,
                "Smoke test of the plan: budgets / 100, held-out scoring and robustness cut down");
  run->add_option("--exit-after", ro->exit_after,
                  "Stop a run's training after this step with a checkpoint (0 = off); rerun to continue");
  run->add_option("--only", ro->only, "Run only these runs (names)")->expected(1, -1);
  run->add_option("--threads", ro->threads, "CPU threads (0 = all cores)")->check(CLI::NonNegativeNumber);
  run->add_option("--device", ro->device, "Where runs train, are scored and generate: cpu | cuda | cuda:N");
  run->add_option("--precision", ro->precision,
                  "Training precision: fp32 | bf16 | auto (bf16 on CUDA); scoring is fp32")
      ->check(CLI::IsMember({"fp32", "bf16", "auto"}));
  run->add_flag("--retime", ro->retime,
                "Train nothing: measure the generation speed of the done runs again (e.g. on a quiet machine)");

  auto rep = std::make_shared<experiment::ReportOptions>();
  auto* report = e->add_subcommand("report",
                                   "Write the report of an experiment directory: index.html (plots "
                                   "beside it) and README.md");
  report->add_option("dir", rep->dir, "Experiment directory (`experiment run --out`)")->required();
  report->add_option("--out", rep->out, "Report directory (required)");
  report->add_option("--title", rep->title, "Title (default: the plan's name)");
  report->add_option("--note", rep->note, "A paragraph under the title (e.g. what is preliminary)");
  report->add_option("--python", rep->python, "Python 3 with matplotlib (Debian: python3-matplotlib)");
  report->add_flag_function(
      "--no-plots", [rep](int64_t) { rep->plots = false; }, "Tables only (no matplotlib needed)");

  return {e, [=] {
            if (*run) return experiment::run_plan(*plan, *ro);
            return experiment::write_report(*rep);
          }};
}

}  // namespace bytelm::cli
