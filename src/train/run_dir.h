// run_dir.h — a training run's directory: the run record (trainer.json), the metrics log, and a new run's
// directory that is probed for writing before any work and removed again if the run fails before its first
// checkpoint. Torch-free.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace bytelm {

// The run record (trainer.json) of an existing run; its step in *step. Error if missing or corrupt. A
// checkpoint whose commit was interrupted is finished first (finish_checkpoint).
nlohmann::json read_run_record(const std::string& out, int64_t* step);

// A checkpoint is written whole before it replaces the last one, so a run killed at any point (or a full
// disk) leaves a checkpoint that loads and resumes: stage_checkpoint(out) gives an empty staging directory
// (out/.checkpoint-next) for every file of the new checkpoint; commit_checkpoint(out) marks it complete and
// moves its files over the old ones, the run record (trainer.json) last. finish_checkpoint(out) completes a
// commit that was interrupted (rolls forward) or drops a staging directory that was never completed.
std::string stage_checkpoint(const std::string& out);
void commit_checkpoint(const std::string& out);
void finish_checkpoint(const std::string& out);

// Metrics lines (JSONL) appended to a file that the first line creates, so a run that fails before logging
// leaves no empty file behind. An empty path writes nothing (data-parallel ranks other than 0).
class MetricsFile {
 public:
  explicit MetricsFile(std::string path) : path_(std::move(path)) {}
  void write(const nlohmann::json& line);

 private:
  std::string path_;
  std::ofstream file_;
};

// On resuming from the checkpoint of `step`: removes the metrics lines of later steps (logged by a run that
// died after that checkpoint; they are about to be trained again) and a torn last line, so every step appears
// once. Rewrites the file atomically, only when something is removed; a missing file is fine.
void drop_metrics_after(const std::string& path, int64_t step);

// A new run's output directory: created (or reused if it exists) and probed for writing, so an unwritable
// --out fails at once (Error naming --out). Unless keep() is called (the first checkpoint was written), the
// destructor removes what the run made: the directory if it created it, else metrics.jsonl.
class FreshOutDir {
 public:
  explicit FreshOutDir(const std::string& dir);
  ~FreshOutDir();
  FreshOutDir(const FreshOutDir&) = delete;
  FreshOutDir& operator=(const FreshOutDir&) = delete;
  void keep() { kept_ = true; }

 private:
  std::string dir_;
  bool created_ = false, kept_ = false;
};

}  // namespace bytelm
