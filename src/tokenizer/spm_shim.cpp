// spm_shim.cpp — bytelm_spm.so: SentencePiece behind a C interface (see spm_shim.h for why it is a module).
#include "tokenizer/spm_shim.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#define BYTELM_SPM_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

struct Handle {
  sentencepiece::SentencePieceProcessor sp;
  std::vector<int> ids;
};

void set_error(char* err, size_t errlen, const std::string& msg) {
  if (!err || errlen == 0) return;
  std::strncpy(err, msg.c_str(), errlen - 1);
  err[errlen - 1] = '\0';
}

class Lines : public sentencepiece::SentenceIterator {
 public:
  Lines(const char* const* lines, const size_t* lens, size_t n) : lines_(lines), lens_(lens), n_(n) { load(); }
  bool done() const override { return i_ >= n_; }
  void Next() override {
    ++i_;
    load();
  }
  const std::string& value() const override { return value_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  void load() {
    if (i_ < n_) value_.assign(lines_[i_], lens_[i_]);
  }
  const char* const* lines_;
  const size_t* lens_;
  size_t n_, i_ = 0;
  std::string value_;
};

}  // namespace

BYTELM_SPM_EXPORT void* bytelm_spm_load(const char* proto, size_t n, char* err, size_t errlen) {
  auto* h = new Handle;
  auto status = h->sp.LoadFromSerializedProto(std::string(proto, n));
  if (!status.ok()) {
    set_error(err, errlen, status.ToString());
    delete h;
    return nullptr;
  }
  return h;
}

BYTELM_SPM_EXPORT void bytelm_spm_free(void* h) { delete static_cast<Handle*>(h); }

BYTELM_SPM_EXPORT int bytelm_spm_size(void* h) { return static_cast<Handle*>(h)->sp.GetPieceSize(); }

BYTELM_SPM_EXPORT int bytelm_spm_piece(void* h, int id, const char** piece, size_t* len) {
  auto& sp = static_cast<Handle*>(h)->sp;
  const std::string& p = sp.IdToPiece(id);
  *piece = p.data();
  *len = p.size();
  if (sp.IsByte(id)) return kSpmByte;
  if (sp.IsControl(id)) return kSpmControl;
  if (sp.IsUnknown(id)) return kSpmUnknown;
  if (sp.IsUnused(id)) return kSpmUnused;
  return kSpmNormal;
}

BYTELM_SPM_EXPORT long bytelm_spm_encode(void* h, const char* text, size_t n, const int** ids, char* err,
                                         size_t errlen) {
  auto* handle = static_cast<Handle*>(h);
  auto status = handle->sp.Encode(std::string_view(text, n), &handle->ids);
  if (!status.ok()) {
    set_error(err, errlen, status.ToString());
    return -1;
  }
  *ids = handle->ids.data();
  return long(handle->ids.size());
}

BYTELM_SPM_EXPORT int bytelm_spm_train(const char* const* keys, const char* const* values, int nargs,
                                       const char* const* lines, const size_t* lens, size_t nlines, char** proto,
                                       size_t* proto_len, char* err, size_t errlen) {
  std::unordered_map<std::string, std::string> args;
  for (int i = 0; i < nargs; ++i) args[keys[i]] = values[i];
  Lines it(lines, lens, nlines);
  std::string out;
  auto status = sentencepiece::SentencePieceTrainer::Train(args, &it, &out);
  if (!status.ok()) {
    set_error(err, errlen, status.ToString());
    return 1;
  }
  *proto = static_cast<char*>(std::malloc(out.size() + 1));
  std::memcpy(*proto, out.data(), out.size());
  *proto_len = out.size();
  return 0;
}

BYTELM_SPM_EXPORT void bytelm_spm_release(char* p) { std::free(p); }
