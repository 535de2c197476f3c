// atomic_file.h — whole-file reads and crash-safe writes.
// A write goes to "<path>.tmp.<pid>" in the same directory, is fsync'd, then renamed over <path>, so a
// reader (or a crash, or a full disk) only ever sees the old file or the complete new one.
#pragma once
#include <cstddef>
#include <string>

namespace bytelm {

// Reads a whole file; throws Error naming the path if missing/unreadable.
std::string read_file(const std::string& path);

// Writes `contents` to `path` atomically (see above). On failure the temp file is removed, the old file is
// untouched and Error is thrown.
void write_file_atomic(const std::string& path, const std::string& contents);

// Streaming variant: write() any number of times, then commit(). Destroying an uncommitted writer
// removes the temp file and leaves <path> as it was.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);  // creates the temp file
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t n);  // throws Error on a short write (e.g. ENOSPC)
  void commit();                           // fsync + rename + fsync the directory

  const std::string& path() const { return path_; }

 private:
  void abandon() noexcept;  // closes and removes the temp file

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace bytelm
