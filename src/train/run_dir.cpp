// run_dir.cpp — see run_dir.h.
#include "train/run_dir.h"

#include <filesystem>
#include <sstream>
#include <vector>

#include "io/atomic_file.h"
#include "io/strict_json.h"
#include "util/error.h"

namespace bytelm {

namespace fs = std::filesystem;

namespace {
constexpr const char* kStaging = "/.checkpoint-next";  // the checkpoint being written
constexpr const char* kStagedMark = "/COMPLETE";       // ... written whole: it replaces the last one
}  // namespace

std::string stage_checkpoint(const std::string& out) {
  const std::string dir = out + kStaging;
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create the checkpoint's staging directory (" + ec.message() + ")");
  return dir;
}

void commit_checkpoint(const std::string& out) {
  write_file_atomic(out + kStaging + kStagedMark, "");
  finish_checkpoint(out);
}

void finish_checkpoint(const std::string& out) {
  const std::string dir = out + kStaging;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  if (!fs::exists(dir + kStagedMark, ec)) {  // torn while being written: the last committed checkpoint stands
    fs::remove_all(dir, ec);
    return;
  }
  // Roll forward: every staged file replaces its namesake, the run record (trainer.json, the step) last.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if ("/" + name != kStagedMark && name != "trainer.json") names.push_back(name);
  }
  if (fs::exists(dir + "/trainer.json", ec)) names.push_back("trainer.json");
  for (const auto& name : names) {
    fs::rename(dir + "/" + name, out + "/" + name, ec);
    if (ec) throw Error(out + "/" + name + ": cannot replace it with the new checkpoint's (" + ec.message() + ")");
  }
  fs::remove_all(dir, ec);
}

nlohmann::json read_run_record(const std::string& out, int64_t* step) {
  finish_checkpoint(out);  // a run killed while committing its last checkpoint: complete it first
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
  if (created_) {
    fs::remove_all(dir_, ec);
  } else {
    fs::remove(dir_ + "/metrics.jsonl", ec);
    fs::remove_all(dir_ + kStaging, ec);
  }
}

}  // namespace bytelm
