// atomic_file.cpp — POSIX implementation of whole-file reads and temp-file-plus-rename writes.
#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

#include "util/error.h"

namespace bytelm {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

std::string parent_directory(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Makes the rename itself durable: without this a crash can forget the new directory entry.
void fsync_directory(const std::string& path) {
  std::string dir = parent_directory(path);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // some filesystems refuse to open directories; the data itself is already synced
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open: " + errno_text(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    throw Error(path + ": cannot stat: " + errno_text(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  std::string out;
  out.reserve(static_cast<size_t>(st.st_size));
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      throw Error(path + ": read failed: " + errno_text(err));
    }
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  AtomicFileWriter writer(path);
  writer.write(contents.data(), contents.size());
  writer.commit();
}

AtomicFileWriter::AtomicFileWriter(const std::string& path)
    : path_(path), temp_path_(path + ".tmp." + std::to_string(::getpid())) {
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(path_ + ": cannot create temporary file " + temp_path_ + ": " + errno_text(errno));
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_) abandon();
}

void AtomicFileWriter::abandon() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  ::unlink(temp_path_.c_str());
}

void AtomicFileWriter::write(const void* data, size_t n) {
  if (fd_ < 0) throw Error(path_ + ": write after commit or failure");
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t written = ::write(fd_, p, n);
    if (written < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      abandon();
      throw Error(path_ + ": write failed: " + errno_text(err));
    }
    if (written == 0) {  // should not happen for regular files, but must not loop forever
      abandon();
      throw Error(path_ + ": write failed: no progress (disk full?)");
    }
    p += written;
    n -= static_cast<size_t>(written);
  }
}

void AtomicFileWriter::commit() {
  if (fd_ < 0) throw Error(path_ + ": commit after commit or failure");
  // Data must reach the disk before the rename publishes it, else a crash can leave an empty file at path.
  if (::fsync(fd_) != 0) {
    int err = errno;
    abandon();
    throw Error(path_ + ": fsync failed: " + errno_text(err));
  }
  // close() can report deferred write errors (e.g. on NFS), so it is checked too.
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    int err = errno;
    abandon();
    throw Error(path_ + ": close failed: " + errno_text(err));
  }
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    abandon();
    throw Error(path_ + ": rename from " + temp_path_ + " failed: " + errno_text(err));
  }
  committed_ = true;
  fsync_directory(path_);
}

}  // namespace bytelm
