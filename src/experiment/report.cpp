// report.cpp — gathering an experiment directory and handing it to the plotting script (see report.h).
#include "experiment/report.h"

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "io/atomic_file.h"
#include "util/error.h"
#include "util/paths.h"

namespace bytelm::experiment {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json read_json(const std::string& path) {
  try {
    return json::parse(read_file(path));
  } catch (const json::exception& e) {
    throw Error(path + ": not valid JSON (" + std::string(e.what()) + ")");
  }
}

std::vector<std::string> sorted_entries(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Single-quoted for the shell.
std::string quoted(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace

json gather_results(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(dir + ": no such experiment directory");
  if (!fs::exists(dir + "/plan.json", ec)) throw Error(dir + ": no plan.json (not made by `bytelm experiment run`)");
  json out{{"plan", read_json(dir + "/plan.json")},
           {"runs", json::array()},
           {"robustness", json::array()},
           {"pending", json::array()}};
  // Runs in plan order; those without a record yet are listed as pending.
  for (const auto& r : out["plan"].value("runs", json::array())) {
    const std::string name = r.value("name", ""), rec = dir + "/runs/" + name + "/record.json";
    if (fs::exists(rec, ec))
      out["runs"].push_back(read_json(rec));
    else
      out["pending"].push_back(name);
  }
  if (out["runs"].empty()) throw Error(dir + ": no run has finished yet (no runs/*/record.json)");
  if (fs::exists(dir + "/compressors.json", ec)) out["compressors"] = read_json(dir + "/compressors.json")["rows"];
  for (const auto& f : sorted_entries(dir + "/robustness"))
    if (f.size() > 5 && f.substr(f.size() - 5) == ".json")
      out["robustness"].push_back(read_json(dir + "/robustness/" + f));
  out["source_dir"] = fs::absolute(dir).string();
  return out;
}

int write_report(const ReportOptions& opt) {
  if (opt.dir.empty()) throw Error("the experiment directory is required");
  if (opt.out.empty()) throw Error("--out is required");
  json results = gather_results(opt.dir);
  if (!opt.title.empty()) results["title"] = opt.title;
  if (!opt.note.empty()) results["note"] = opt.note;
  fs::create_directories(opt.out);
  const std::string data = opt.out + "/results.json";
  write_file_atomic(data, results.dump(1) + "\n");
  // The report is the Python package scripts/report, run as a module with scripts/ on PYTHONPATH.
  const std::string scripts = data_dir("scripts");
  std::error_code ec;
  if (!fs::exists(scripts + "/report/__main__.py", ec)) throw Error(scripts + "/report: the report package is missing");
  if (!fs::exists(opt.python, ec)) throw Error(opt.python + ": no python3 (apt-get install python3-matplotlib)");
  const std::string cmd = "PYTHONPATH=" + quoted(scripts) + " " + quoted(opt.python) + " -m report " + quoted(data) +
                          " " + quoted(opt.out) + (opt.plots ? "" : " --no-plots");
  const int rc = std::system(cmd.c_str());
  if (rc != 0) throw Error("the report script failed (" + cmd + ", exit " + std::to_string(WEXITSTATUS(rc)) + ")", 1);
  std::printf("report: %s/index.html, %s/README.md (%zu runs)\n", opt.out.c_str(), opt.out.c_str(),
              results["runs"].size());
  return 0;
}

}  // namespace bytelm::experiment
