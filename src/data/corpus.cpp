// corpus.cpp — file discovery, mmap, per-file train/val split, and stateless random windows.
#include "data/corpus.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "util/error.h"

namespace bytelm {
namespace {

namespace fs = std::filesystem;

bool is_hidden(const fs::path& path) {
  const std::string name = path.filename().string();
  return !name.empty() && name[0] == '.';
}

// Appends the regular files under `root` (or root itself) to out. Directory files are sorted so the corpus
// order, and hence every sampled batch, does not depend on the filesystem's listing order.
void collect_files(const std::string& root, std::vector<std::string>* out) {
  std::error_code ec;
  fs::file_status status = fs::status(root, ec);
  if (ec || !fs::exists(status)) throw Error(root + ": corpus path does not exist");
  if (fs::is_regular_file(status)) {
    out->push_back(root);
    return;
  }
  if (!fs::is_directory(status)) throw Error(root + ": corpus path is not a regular file or directory");

  std::vector<std::string> found;
  // Symlinked directories are not followed (no cycles); symlinked files are, via status() below.
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
  if (ec) throw Error(root + ": cannot read directory: " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) throw Error(root + ": cannot read directory: " + ec.message());
    const fs::path& path = it->path();
    if (is_hidden(path)) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    std::error_code status_ec;
    if (fs::is_regular_file(fs::status(path, status_ec)) && !status_ec) found.push_back(path.string());
  }
  if (ec) throw Error(root + ": cannot read directory: " + ec.message());
  std::sort(found.begin(), found.end());
  out->insert(out->end(), found.begin(), found.end());
}

// splitmix64's finaliser: a bijection on 64-bit values with full avalanche, which makes it a good
// counter-based generator when fed distinct keys.
uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Uniform integer in [0, range) from the key, by Lemire's multiply-shift with rejection. A rejected draw
// re-mixes the value, so the result is still a pure function of the key.
__extension__ typedef unsigned __int128 uint128;  // GCC/Clang builtin; __extension__ keeps -Wpedantic quiet

uint64_t uniform_below(uint64_t key, uint64_t range) {
  uint64_t x = mix64(key);
  uint128 product = static_cast<uint128>(x) * range;
  uint64_t low = static_cast<uint64_t>(product);
  if (low < range) {
    const uint64_t threshold = (0 - range) % range;  // 2^64 mod range
    while (low < threshold) {
      x = mix64(x);
      product = static_cast<uint128>(x) * range;
      low = static_cast<uint64_t>(product);
    }
  }
  return static_cast<uint64_t>(product >> 64);
}

void add_part(const std::string& path, const uint8_t* data, int64_t size, std::vector<Corpus::FileView>* parts) {
  if (size > 0) parts->push_back({path, data, size});
}

}  // namespace

Corpus::Corpus(const std::vector<std::string>& paths, double val_fraction) {
  if (!(val_fraction >= 0.0 && val_fraction < 1.0))
    throw Error("corpus: val_fraction must be in [0, 1), got " + std::to_string(val_fraction));
  if (paths.empty()) throw Error("corpus: no paths given");

  std::vector<std::string> file_paths;
  for (const std::string& path : paths) collect_files(path, &file_paths);

  for (const std::string& path : file_paths) {
    MappedFile map(path, "corpus file");
    if (map.size() == 0) continue;
    // Corpus windows are read at random offsets; tell the kernel not to bother reading ahead.
    map.advise_random();
    const int64_t size = static_cast<int64_t>(map.size());
    const int64_t val_size =
        std::min<int64_t>(size, static_cast<int64_t>(std::ceil(val_fraction * static_cast<double>(size))));
    files_.push_back({path, std::move(map), size - val_size});
  }

  if (files_.empty()) {
    std::string joined;
    for (const std::string& p : paths) joined += (joined.empty() ? "" : ", ") + p;
    throw Error("corpus: no bytes in " + joined + " (no non-empty files)");
  }

  for (const File& f : files_) {
    const uint8_t* data = f.map.data();
    const int64_t size = static_cast<int64_t>(f.map.size());
    add_part(f.path, data, f.train_size, &train_.parts);
    add_part(f.path, data + f.train_size, size - f.train_size, &val_.parts);
    add_part(f.path, data, size, &all_.parts);
  }
  for (Stream* s : {&train_, &val_, &all_}) {
    for (const FileView& part : s->parts) {
      s->starts.push_back(s->size);
      s->size += part.size;
    }
  }
}

Corpus::~Corpus() = default;

const Corpus::Stream& Corpus::stream(Split split) const {
  switch (split) {
    case Split::Train:
      return train_;
    case Split::Val:
      return val_;
    case Split::All:
      return all_;
  }
  throw Error("corpus: invalid split");
}

int64_t Corpus::size(Split split) const { return stream(split).size; }

int64_t Corpus::num_files() const { return static_cast<int64_t>(files_.size()); }

void Corpus::read(Split split, int64_t start, int64_t len, uint8_t* out) const {
  const Stream& s = stream(split);
  if (start < 0 || len < 0 || start > s.size || len > s.size - start)
    throw Error("corpus: read of " + std::to_string(len) + " bytes at " + std::to_string(start) +
                " is outside the split's " + std::to_string(s.size) + " bytes");
  if (len == 0) return;
  // The part holding `start` is the last one whose stream offset is <= start.
  size_t i = static_cast<size_t>(std::upper_bound(s.starts.begin(), s.starts.end(), start) - s.starts.begin()) - 1;
  int64_t offset = start - s.starts[i];
  while (len > 0) {
    const FileView& part = s.parts[i];
    const int64_t n = std::min(len, part.size - offset);
    std::memcpy(out, part.data + offset, static_cast<size_t>(n));
    out += n;
    len -= n;
    offset = 0;
    ++i;
  }
}

void Corpus::sample(Split split, uint64_t seed, uint64_t step, int64_t batch, int64_t len, uint8_t* out,
                    int64_t first_row) const {
  const Stream& s = stream(split);
  if (batch < 0 || len < 0) throw Error("corpus: sample needs batch >= 0 and len >= 0");
  if (s.size < len)
    throw Error("corpus split has " + std::to_string(s.size) + " bytes, shorter than one window of " +
                std::to_string(len) + " bytes");
  const uint64_t positions = static_cast<uint64_t>(s.size - len) + 1;
  // Chained mixing keeps (seed, step, row) -> key injective for any fixed seed and step.
  const uint64_t step_key = mix64(mix64(seed) ^ step);
  for (int64_t row = 0; row < batch; ++row) {
    const uint64_t start = uniform_below(step_key ^ static_cast<uint64_t>(first_row + row), positions);
    read(split, static_cast<int64_t>(start), len, out + row * len);
  }
}

std::vector<Corpus::FileView> Corpus::files(Split split) const { return stream(split).parts; }

}  // namespace bytelm
