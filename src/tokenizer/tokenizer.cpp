// tokenizer.cpp — SentencePiece behind the lossless Tokenizer (see tokenizer.h), reached through the
// bytelm_spm.so module (spm_shim.h says why it is loaded apart).
#include "tokenizer/tokenizer.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "tokenizer/spm_shim.h"

#include "io/atomic_file.h"
#include "tokenizer/byte_escape.h"
#include "util/error.h"
#include "util/paths.h"

namespace bytelm {

namespace {

// The functions of bytelm_spm.so, loaded once: beside the running binary (or one directory up, for the
// test binaries), else where the build put it.
struct Spm {
  spm_load_fn load;
  spm_free_fn free;
  spm_size_fn size;
  spm_piece_fn piece;
  spm_encode_fn encode;
  spm_train_fn train;
  spm_release_fn release;
};

const Spm& spm() {
  static Spm fns;
  static std::string error;
  static std::once_flag once;
  std::call_once(once, [] {
    const std::vector<std::string> candidates = spm_module_candidates();
    void* lib = nullptr;
    for (const auto& c : candidates)
      if (access(c.c_str(), R_OK) == 0 && (lib = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND))) break;
    if (!lib) {
      const char* e = dlerror();
      error = "cannot load bytelm_spm.so, SentencePiece's module (install libsentencepiece-dev and rebuild bytelm)" +
              std::string(e ? std::string(": ") + e : "");
      return;
    }
    auto sym = [&](const char* name) { return dlsym(lib, name); };
    fns.load = reinterpret_cast<spm_load_fn>(sym("bytelm_spm_load"));
    fns.free = reinterpret_cast<spm_free_fn>(sym("bytelm_spm_free"));
    fns.size = reinterpret_cast<spm_size_fn>(sym("bytelm_spm_size"));
    fns.piece = reinterpret_cast<spm_piece_fn>(sym("bytelm_spm_piece"));
    fns.encode = reinterpret_cast<spm_encode_fn>(sym("bytelm_spm_encode"));
    fns.train = reinterpret_cast<spm_train_fn>(sym("bytelm_spm_train"));
    fns.release = reinterpret_cast<spm_release_fn>(sym("bytelm_spm_release"));
    if (!fns.load || !fns.free || !fns.size || !fns.piece || !fns.encode || !fns.train || !fns.release)
      error = "bytelm_spm.so lacks its functions (rebuild bytelm)";
  });
  if (!error.empty()) throw Error(error);
  return fns;
}

}  // namespace

bool tokenizer_available() {
  try {
    spm();
    return true;
  } catch (const Error&) {
    return false;
  }
}

struct Tokenizer::Impl {
  void* handle = nullptr;
  ~Impl() {
    if (handle) spm().free(handle);
  }
};

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

namespace {

constexpr size_t kLineBytes = 2000;    // SentencePiece skips training lines over 4,192 bytes
constexpr int64_t kChunkBytes = 4096;  // encode in chunks: one 10 MB string takes minutes, chunks seconds

// The end of the next training line or encoding chunk of s[from, n): after a '\n', else before a space
// that follows a non-space (pieces never cross either: newlines are byte pieces, spaces start pieces),
// else at `limit` bytes. Cuts only at ASCII bytes, so never inside a UTF-8 character.
size_t cut(const std::string& s, size_t from, size_t limit, bool at_newline_only_if_found) {
  const size_t end = std::min(s.size(), from + limit);
  if (end == s.size() && !at_newline_only_if_found) return end;
  for (size_t i = from; i < end; ++i)
    if (s[i] == '\n') return i + 1;
  if (end == s.size()) return end;
  for (size_t i = end; i > from + 1; --i)
    if (s[i - 1] == ' ' && s[i - 2] != ' ') return i - 1;
  size_t i = end;  // no space: back up to a character boundary
  while (i > from + 1 && (uint8_t(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

// The escaped text without its escapes (4-byte sequences F4 8F BC..BF xx), each run replaced by a newline.
std::string drop_escapes(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (uint8_t(s[i]) == 0xF4 && i + 3 < s.size() && uint8_t(s[i + 1]) == 0x8F && uint8_t(s[i + 2]) >= 0xBC) {
      if (out.empty() || out.back() != '\n') out += '\n';
      i += 4;
    } else {
      out += s[i++];
    }
  }
  return out;
}

// SentencePiece gives every character kept by --character_coverage a piece of its own, before any merge,
// and fails when they and the 259 byte and special pieces exceed the vocabulary (binary files hold hundreds
// of rare characters). So: the coverage that keeps at most half of the other pieces for characters (the
// most frequent ones), within [0.98, 0.9995] (SentencePiece's floor and default); rarer characters use
// byte fallback.
double character_coverage(const std::vector<std::string>& lines, int64_t vocab) {
  std::unordered_map<uint32_t, int64_t> counts;
  int64_t total = 0;
  for (const auto& l : lines) {
    for (size_t i = 0; i < l.size();) {
      const uint8_t c = uint8_t(l[i]);
      const size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;  // the lines are valid UTF-8
      uint32_t key = 0;
      for (size_t k = 0; k < len && i + k < l.size(); ++k) key = (key << 8) | uint8_t(l[i + k]);
      ++counts[key];
      ++total;
      i += len;
    }
  }
  std::vector<int64_t> freq;
  for (const auto& kv : counts) freq.push_back(kv.second);
  std::sort(freq.rbegin(), freq.rend());
  const size_t keep = size_t(std::max<int64_t>(1, (vocab - 259) / 2));
  if (freq.size() <= keep || total == 0) return 0.9995;
  int64_t covered = 0;
  for (size_t i = 0; i < keep; ++i) covered += freq[i];
  return std::clamp(double(covered) / double(total) - 1e-9, 0.98, 0.9995);
}

// Training lines (escaped text, no newlines) from memory.
class LineIterator {
 public:
  LineIterator(const std::vector<std::string>& texts, int64_t max_bytes) {
    int64_t used = 0;
    for (const auto& t : texts) {
      if (used >= max_bytes) break;
      const int64_t take = std::min<int64_t>(int64_t(t.size()), max_bytes - used);
      used += take;
      // Escapes (bytes that are not text) are left out: they decode through byte fallback, and in binary
      // files they would be 256 more characters asking for pieces of their own.
      const std::string s = drop_escapes(escape_bytes(reinterpret_cast<const uint8_t*>(t.data()), take));
      for (size_t from = 0; from < s.size();) {
        const size_t to = cut(s, from, kLineBytes, true);
        std::string line = s.substr(from, to - from);
        if (!line.empty() && line.back() == '\n') line.pop_back();
        if (!line.empty()) lines_.push_back(std::move(line));
        from = to;
      }
    }
  }
  size_t size() const { return lines_.size(); }
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  std::vector<std::string> lines_;
};

// "<0x41>" -> 0x41.
char byte_of_piece(const std::string& piece) { return char(std::stoi(piece.substr(3, 2), nullptr, 16)); }

}  // namespace

Tokenizer Tokenizer::from_serialized(const std::string& model_proto, const std::string& what) {
  Tokenizer t;
  char err[512] = "";
  t.impl_->handle = spm().load(model_proto.data(), model_proto.size(), err, sizeof err);
  if (!t.impl_->handle) throw Error(what + ": not a SentencePiece tokenizer model (" + err + ")");
  t.proto_ = model_proto;
  const int n = spm().size(t.impl_->handle);
  t.text_.resize(size_t(n));
  int bytes = 0;
  for (int id = 0; id < n; ++id) {
    const char* data = nullptr;
    size_t len = 0;
    const int kind = spm().piece(t.impl_->handle, id, &data, &len);
    const std::string piece(data, len);
    if (kind == kSpmByte) {
      t.text_[size_t(id)] = std::string(1, byte_of_piece(piece));
      ++bytes;
    } else if (kind != kSpmNormal) {
      t.text_[size_t(id)] = "";
    } else {
      std::string s;
      for (size_t i = 0; i < piece.size();) {
        if (piece.compare(i, 3, "\xE2\x96\x81") == 0)
          s += ' ', i += 3;
        else
          s += piece[i++];
      }
      t.text_[size_t(id)] = s;
    }
  }
  // Lossless only with byte fallback and without normalisation: check both on a probe.
  const std::string probe = "  A\tfi \xEF\xAC\x81 \xE2\x91\xA0  x\r\n\xC3\xA9\x65\xCC\x81";
  if (bytes != 256 || t.decode(t.encode(probe)) != probe)
    throw Error(what +
                ": this tokenizer does not give back the exact bytes (it needs byte fallback and the identity "
                "normalisation; train one with `bytelm tokenizer train`)");
  return t;
}

Tokenizer Tokenizer::load(const std::string& path) {
  std::string proto;
  try {
    proto = read_file(path);
  } catch (const std::exception& e) {
    throw Error(std::string(e.what()));
  }
  return from_serialized(proto, path);
}

Tokenizer Tokenizer::train(const std::vector<std::string>& texts, const TokenizerTrainOptions& opt) {
  if (opt.type != "bpe" && opt.type != "unigram")
    throw Error("tokenizer type " + opt.type + ": expected bpe or unigram");
  if (opt.vocab < 300 || opt.vocab > 1000000)
    throw Error("--vocab " + std::to_string(opt.vocab) + ": expected 300..1000000 (259 pieces are bytes and specials)");
  LineIterator lines(texts, opt.max_bytes);
  if (lines.size() == 0) throw Error("no text to train a tokenizer on");
  const std::vector<std::pair<std::string, std::string>> args{
      {"model_type", opt.type},
      {"vocab_size", std::to_string(opt.vocab)},
      {"character_coverage", std::to_string(character_coverage(lines.lines(), opt.vocab))},
      {"byte_fallback", "true"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "false"},
      {"allow_whitespace_only_pieces", "true"},
      {"split_digits", "true"},
      {"hard_vocab_limit", "false"},
      {"max_sentence_length", std::to_string(kLineBytes + 64)},
      {"num_threads", std::to_string(std::max(1, opt.threads))},
      {"minloglevel", "2"},
      {"model_prefix", ""}};
  std::vector<const char*> keys, values, line_ptrs;
  std::vector<size_t> lens;
  for (const auto& kv : args) keys.push_back(kv.first.c_str()), values.push_back(kv.second.c_str());
  for (const auto& l : lines.lines()) line_ptrs.push_back(l.data()), lens.push_back(l.size());
  char* proto = nullptr;
  size_t proto_len = 0;
  char err[512] = "";
  if (spm().train(keys.data(), values.data(), int(keys.size()), line_ptrs.data(), lens.data(), line_ptrs.size(), &proto,
                  &proto_len, err, sizeof err) != 0)
    throw Error(std::string("training the tokenizer: ") + err);
  const std::string serialized(proto, proto_len);
  spm().release(proto);
  return from_serialized(serialized, "the trained tokenizer");
}

Tokenizer load_checkpoint_tokenizer(const std::string& dir, int64_t vocab) {
  Tokenizer t = Tokenizer::load(dir + "/" + kTokenizerFile);
  if (t.vocab_size() != vocab)
    throw Error(dir + "/" + kTokenizerFile + ": " + std::to_string(t.vocab_size()) +
                " pieces, but the model's vocab_size is " + std::to_string(vocab));
  return t;
}

void Tokenizer::save(const std::string& path) const { write_file_atomic(path, proto_); }

std::vector<int32_t> Tokenizer::encode(const uint8_t* data, int64_t n) const {
  const std::string s = escape_bytes(data, n);
  std::vector<int32_t> out;
  out.reserve(size_t(n / 3 + 16));
  char err[512] = "";
  for (size_t from = 0; from < s.size();) {
    const size_t to = cut(s, from, kChunkBytes, false);
    const int* ids = nullptr;
    const long n_ids = spm().encode(impl_->handle, s.data() + from, to - from, &ids, err, sizeof err);
    if (n_ids < 0) throw Error(std::string("tokenizer: ") + err);
    out.insert(out.end(), ids, ids + n_ids);
    from = to;
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string s;
  for (int32_t id : ids) {
    if (id < 0 || id >= int32_t(text_.size())) throw Error("token id " + std::to_string(id) + " out of range");
    s += text_[size_t(id)];
  }
  return unescape_bytes(s);
}

}  // namespace bytelm
