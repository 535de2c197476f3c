// run_dir.cpp — see run_dir.h.
#include "train/run_dir.h"

#include <filesystem>
#include <sstream>

#include "io/atomic_file.h"
#include "io/strict_json.h"
#include "util/error.h"

namespace bytelm {

namespace fs = std::filesystem;

nlohmann::json read_run_record(const std::string& out, int64_t* step) {
  const std::string path = out + "/trainer.json";
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(out + ": nothing to resume (no trainer.json); run without --resume first");
  try {
    nlohmann::json j = read_strict_json(path);
    *step = j.at("step").get<int64_t>();
    return j;
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": invalid trainer state (" + std::string(e.what()) + ")");
  }
}

void drop_metrics_after(const std::string& path, int64_t step) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return;
  std::istringstream in(read_file(path));
  std::string line, kept;
  bool dropped = false;
  while (std::getline(in, line)) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    const bool later = j.is_discarded() || (j.is_object() && j.contains("step") && j["step"].is_number() &&
                                            j["step"].get<int64_t>() > step);
    if (later)
      dropped = true;
    else
      kept += line + "\n";
  }
  if (dropped) write_file_atomic(path, kept);
}

void MetricsFile::write(const nlohmann::json& line) {
  if (path_.empty()) return;
  if (!file_.is_open()) file_.open(path_, std::ios::app);
  file_ << line.dump() << "\n" << std::flush;
}

FreshOutDir::FreshOutDir(const std::string& dir) : dir_(dir) {
  std::error_code ec;
  created_ = !fs::exists(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) throw Error("--out " + dir + ": cannot create the directory (" + ec.message() + ")");
  const std::string probe = dir + "/.bytelm-write-test";
  try {
    write_file_atomic(probe, "");
  } catch (const Error&) {
    if (created_) fs::remove(dir, ec);
    throw Error("--out " + dir + ": the directory is not writable");
  }
  fs::remove(probe, ec);
}

FreshOutDir::~FreshOutDir() {
  if (kept_) return;
  std::error_code ec;
  if (created_)
    fs::remove_all(dir_, ec);
  else
    fs::remove(dir_ + "/metrics.jsonl", ec);
}

}  // namespace bytelm
