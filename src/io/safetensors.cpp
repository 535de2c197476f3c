// safetensors.cpp — validating mmap reader and atomic writer for safetensors files.
// Validation follows the rules of the reference (Rust/Python) implementation, so a file one accepts the other
// accepts: tensors must tile the data region exactly, in any order, with no gaps and no overlaps.
#include "io/safetensors.h"

#include "io/strict_json.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/strict_json.h"
#include "util/error.h"

namespace bytelm {
namespace {

// The reference implementation refuses headers above 100 MB; a larger N is corruption, not a real model.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DTypeEntry {
  DType dtype;
  const char* name;
  size_t size;
};
constexpr DTypeEntry kDTypes[] = {
    {DType::F64, "F64", 8}, {DType::F32, "F32", 4},   {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2},
    {DType::I64, "I64", 8}, {DType::I32, "I32", 4},   {DType::I16, "I16", 2}, {DType::I8, "I8", 1},
    {DType::U8, "U8", 1},   {DType::BOOL, "BOOL", 1},
};

const DTypeEntry& dtype_entry(DType dtype) {
  for (const DTypeEntry& entry : kDTypes)
    if (entry.dtype == dtype) return entry;
  throw Error("safetensors: invalid DType value " + std::to_string(static_cast<int>(dtype)));
}

// nlohmann's messages may quote raw header bytes; keep the Error one printable line of bounded length.
std::string one_line(const std::string& text, size_t max_chars = 200) {
  std::string out;
  for (char c : text) {
    if (out.size() >= max_chars) {
      out += "...";
      break;
    }
    unsigned char u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? c : '?';
  }
  return out;
}

// The tensor name quoted for messages (names come from the file and may be hostile).
std::string quote_name(const std::string& name) { return "'" + one_line(name, 80) + "'"; }

bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }

// Reads a JSON integer that must be >= 0; false for floats, negatives, or non-numbers.
bool nonnegative_integer(const nlohmann::json& value, uint64_t* out) {
  if (value.is_number_unsigned()) {
    *out = value.get<uint64_t>();
    return true;
  }
  if (value.is_number_integer()) {
    int64_t v = value.get<int64_t>();
    if (v < 0) return false;
    *out = static_cast<uint64_t>(v);
    return true;
  }
  return false;
}

TensorInfo parse_entry(const std::string& path, const std::string& name, const nlohmann::json& entry) {
  const std::string where = path + ": tensor " + quote_name(name);
  if (!entry.is_object()) throw Error(where + ": entry is not an object");
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!entry.contains(field)) throw Error(where + ": missing " + field);

  TensorInfo info;
  const nlohmann::json& dtype = entry["dtype"];
  if (!dtype.is_string()) throw Error(where + ": dtype is not a string");
  if (!dtype_from_name(dtype.get<std::string>(), &info.dtype))
    throw Error(where + ": unknown dtype " + quote_name(dtype.get<std::string>()));

  const nlohmann::json& shape = entry["shape"];
  if (!shape.is_array()) throw Error(where + ": shape is not an array");
  uint64_t numel = 1;
  for (const nlohmann::json& dim : shape) {
    if (dim.is_number_integer() && !dim.is_number_unsigned() && dim.get<int64_t>() < 0)
      throw Error(where + ": negative dimension " + std::to_string(dim.get<int64_t>()) + " in shape");
    uint64_t d;
    if (!nonnegative_integer(dim, &d)) throw Error(where + ": shape has a non-integer dimension");
    if (d > static_cast<uint64_t>(INT64_MAX)) throw Error(where + ": dimension too large in shape");
    if (!checked_mul(numel, d, &numel) || numel > static_cast<uint64_t>(INT64_MAX))
      throw Error(where + ": shape has too many elements (overflow)");
    info.shape.push_back(static_cast<int64_t>(d));
  }

  const nlohmann::json& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !nonnegative_integer(offsets[0], &info.begin) ||
      !nonnegative_integer(offsets[1], &info.end))
    throw Error(where + ": data_offsets must be two non-negative integers");
  if (info.begin > info.end)
    throw Error(where + ": data_offsets begin " + std::to_string(info.begin) + " > end " + std::to_string(info.end));

  uint64_t expected_bytes;
  if (!checked_mul(numel, dtype_size(info.dtype), &expected_bytes)) throw Error(where + ": byte size overflows");
  if (info.end - info.begin != expected_bytes)
    throw Error(where + ": size mismatch: data_offsets span " + std::to_string(info.end - info.begin) +
                " bytes but shape and dtype need " + std::to_string(expected_bytes));
  return info;
}

}  // namespace

size_t dtype_size(DType dtype) { return dtype_entry(dtype).size; }
const char* dtype_name(DType dtype) { return dtype_entry(dtype).name; }

bool dtype_from_name(const std::string& name, DType* dtype) {
  for (const DTypeEntry& entry : kDTypes) {
    if (name == entry.name) {
      *dtype = entry.dtype;
      return true;
    }
  }
  return false;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated against overflow when read
  return n;
}

SafetensorsReader::SafetensorsReader(const std::string& path) : path_(path), map_(path, "safetensors file") {
  const uint64_t file_size = map_.size();
  if (file_size < 8)
    throw Error(path + ": file too short for a safetensors header (" + std::to_string(file_size) + " bytes)");

  const uint8_t* bytes = map_.data();
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | bytes[i];  // little-endian u64
  if (header_size > file_size - 8)
    throw Error(path + ": header length " + std::to_string(header_size) + " exceeds file size " +
                std::to_string(file_size));
  if (header_size > kMaxHeaderBytes)
    throw Error(path + ": header length " + std::to_string(header_size) + " is too large");
  const char* header_begin = reinterpret_cast<const char*>(bytes + 8);
  // Duplicate keys (two readers could disagree on the file's contents), deep nesting and NUL bytes are
  // refused; padding after the JSON may only be whitespace (the format pads with spaces).
  nlohmann::json header = parse_strict_json(header_begin, header_begin + header_size, path + ": header");
  if (!header.is_object()) throw Error(path + ": header JSON is not an object");

  data_region_ = bytes + 8 + header_size;
  const uint64_t data_size = file_size - 8 - header_size;

  for (const auto& item : header.items()) {
    if (item.key() == "__metadata__") {
      if (!item.value().is_object()) throw Error(path + ": __metadata__ is not an object");
      for (const auto& meta : item.value().items()) {
        if (!meta.value().is_string())
          throw Error(path + ": metadata value for " + quote_name(meta.key()) + " is not a string");
        metadata_[meta.key()] = meta.value().get<std::string>();
      }
      continue;
    }
    TensorInfo info = parse_entry(path, item.key(), item.value());
    if (info.end > data_size)
      throw Error(path + ": tensor " + quote_name(item.key()) + ": data_offsets end " + std::to_string(info.end) +
                  " beyond data region of " + std::to_string(data_size) + " bytes");
    tensors_.emplace(item.key(), std::move(info));
  }

  // Tensors must tile [0, data_size): sorted by offsets, each must start where the previous ended.
  std::vector<std::pair<const std::string*, const TensorInfo*>> order;
  for (const auto& entry : tensors_) order.emplace_back(&entry.first, &entry.second);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return std::make_pair(a.second->begin, a.second->end) < std::make_pair(b.second->begin, b.second->end);
  });
  uint64_t covered = 0;
  for (const auto& [name, info] : order) {
    if (info->begin < covered)
      throw Error(path + ": tensor " + quote_name(*name) + " overlaps another tensor (begins at " +
                  std::to_string(info->begin) + ", previous ends at " + std::to_string(covered) + ")");
    if (info->begin > covered)
      throw Error(path + ": gap in data region: bytes " + std::to_string(covered) + ".." + std::to_string(info->begin) +
                  " belong to no tensor");
    covered = info->end;
  }
  if (covered != data_size)
    throw Error(path + ": data region has " + std::to_string(data_size - covered) +
                " trailing bytes not covered by any tensor (gap)");
}

SafetensorsReader::~SafetensorsReader() = default;
SafetensorsReader::SafetensorsReader(SafetensorsReader&&) noexcept = default;
SafetensorsReader& SafetensorsReader::operator=(SafetensorsReader&&) noexcept = default;

const TensorInfo& SafetensorsReader::info(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw Error(path_ + ": missing tensor " + quote_name(name));
  return it->second;
}

const uint8_t* SafetensorsReader::data(const std::string& name) const { return data_region_ + info(name).begin; }

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  static_assert(sizeof(uint64_t) == 8, "u64 header length");
  {
    const uint16_t probe = 1;
    uint8_t first;
    std::memcpy(&first, &probe, 1);
    if (first != 1) throw Error(path + ": safetensors writing needs a little-endian host");
  }

  // ordered_json keeps insertion order, so the header lists tensors in the order their bytes are laid out.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = std::move(meta);
  }
  std::vector<uint64_t> sizes;
  uint64_t offset = 0;
  std::set<std::string> names;
  for (const TensorToWrite& t : tensors) {
    const std::string where = path + ": tensor " + quote_name(t.name);
    if (t.name.empty() || t.name == "__metadata__") throw Error(where + ": reserved or empty name");
    if (!names.insert(t.name).second) throw Error(where + ": duplicate name");
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) throw Error(where + ": negative dimension in shape");
      if (!checked_mul(numel, static_cast<uint64_t>(d), &numel)) throw Error(where + ": shape overflows");
    }
    uint64_t bytes;
    if (!checked_mul(numel, dtype_size(t.dtype), &bytes)) throw Error(where + ": byte size overflows");
    if (bytes > 0 && t.data == nullptr) throw Error(where + ": null data");
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = dtype_name(t.dtype);
    entry["shape"] = t.shape;
    entry["data_offsets"] = {offset, offset + bytes};
    header[t.name] = std::move(entry);
    sizes.push_back(bytes);
    offset += bytes;
  }

  std::string header_text;
  try {
    header_text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": cannot encode header (names and metadata must be UTF-8): " + one_line(e.what()));
  }
  // Padding keeps the data region 8-byte aligned relative to the file start, as the reference writer does.
  header_text.append((8 - header_text.size() % 8) % 8, ' ');

  uint8_t length_bytes[8];
  uint64_t n = header_text.size();
  for (int i = 0; i < 8; ++i) length_bytes[i] = static_cast<uint8_t>(n >> (8 * i));

  AtomicFileWriter writer(path);
  writer.write(length_bytes, sizeof length_bytes);
  writer.write(header_text.data(), header_text.size());
  for (size_t i = 0; i < tensors.size(); ++i)
    if (sizes[i] > 0) writer.write(tensors[i].data, sizes[i]);
  writer.commit();
}

}  // namespace bytelm
