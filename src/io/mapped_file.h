// mapped_file.h — a read-only memory mapping of a whole regular file (RAII, movable), shared by the
// corpus reader and the safetensors reader.
#pragma once
#include <cstdint>
#include <string>

namespace bytelm {

class MappedFile {
 public:
  MappedFile() = default;
  // Maps `path` (`what` names the file's role in error messages, e.g. "corpus file"). An empty file maps
  // to size 0 and a null data pointer. Throws Error naming the path on open/stat/mmap failure or if the
  // path is not a regular file.
  MappedFile(const std::string& path, const std::string& what);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return static_cast<const uint8_t*>(mapping_); }
  uint64_t size() const { return size_; }
  // Hint that reads come at random offsets (no read-ahead).
  void advise_random() const;

 private:
  void* mapping_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace bytelm
