// report.h — `bytelm experiment report DIR --out REPORT`: gathers the records of an experiment directory
// (runs/*/record.json, compressors.json, robustness/*.json, plan.json) into REPORT/results.json, then runs
// the Python package scripts/report (Debian's python3 + matplotlib) which draws the plots (PNG beside the page)
// and writes REPORT/index.html (self-contained: no scripts, fonts or styles from elsewhere) and
// REPORT/README.md (the Markdown summary). Torch-free.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace bytelm::experiment {

struct ReportOptions {
  std::string dir;    // the experiment directory (`experiment run --out`)
  std::string out;    // the report directory
  std::string title;  // "" = the plan's name
  std::string note;   // a paragraph placed under the title (e.g. "preliminary: ...")
  std::string python = "/usr/bin/python3";
  bool plots = true;  // false: tables only (no matplotlib needed)
};

// Everything in DIR as one JSON object; Error if DIR holds no recorded run.
nlohmann::json gather_results(const std::string& dir);

int write_report(const ReportOptions& opt);

}  // namespace bytelm::experiment
