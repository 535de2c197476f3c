// safetensors.h — reader and writer for the safetensors format (the layout Python's `safetensors` uses):
//   u64 little-endian N | N bytes of JSON header | data region
// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} with offsets relative to
// the data region, plus an optional "__metadata__" object of string -> string.
// The reader trusts nothing in the file: every offset and size is checked before a pointer is handed out, and
// every problem becomes a one-line bytelm::Error naming the file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>
#include "io/mapped_file.h"

namespace bytelm {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

size_t dtype_size(DType dtype);                               // bytes per element
const char* dtype_name(DType dtype);                          // "F32", "BF16", ... as spelled in the header
bool dtype_from_name(const std::string& name, DType* dtype);  // false for names bytelm does not know

struct TensorInfo {
  DType dtype;
  std::vector<int64_t> shape;  // empty for a 0-d scalar
  uint64_t begin, end;         // byte range relative to the data region
  int64_t numel() const;       // 1 for a scalar, 0 if any dimension is 0
};

// Maps the file read-only. data() pointers stay valid for the reader's lifetime; they are only as aligned as
// the file's offsets make them (the format guarantees no alignment), so copy with memcpy.
class SafetensorsReader {
 public:
  explicit SafetensorsReader(const std::string& path);  // mmap + full validation; throws Error
  ~SafetensorsReader();
  SafetensorsReader(const SafetensorsReader&) = delete;
  SafetensorsReader& operator=(const SafetensorsReader&) = delete;
  SafetensorsReader(SafetensorsReader&& other) noexcept;
  SafetensorsReader& operator=(SafetensorsReader&& other) noexcept;

  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }  // empty if absent
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;  // throws Error "<path>: missing tensor 'name'"
  const uint8_t* data(const std::string& name) const;     // pointer into the mapping
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  MappedFile map_;
  const uint8_t* data_region_ = nullptr;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;  // numel * dtype_size bytes, little-endian, row-major
};

// Writes atomically (temp file + rename). The header is compact JSON ("__metadata__" first when non-empty,
// then tensors in the given order) padded with spaces to a multiple of 8 bytes; tensor bytes follow
// contiguously in the given order.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace bytelm
