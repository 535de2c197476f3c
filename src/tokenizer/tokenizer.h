// tokenizer.h — the BPE baseline's subword tokenizer: SentencePiece (BPE or unigram) made lossless on any
// bytes. Input bytes are first put in the escaped form (byte_escape.h); the model uses byte fallback (256
// <0xNN> pieces for characters outside its vocabulary), the identity normalisation, no dummy prefix and no
// whitespace folding, so decode(encode(x)) == x for every byte string x. Torch-free; SentencePiece stays
// inside tokenizer.cpp.
//
// Ids: 0 <unk>, 1 <s>, 2 </s> (control pieces never produced by encode), then 256 byte pieces and the
// learned pieces. Each id decodes to a fixed string of escaped bytes (token_text), so a token stream
// decodes piece by piece (generation streams bytes as soon as they are complete).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bytelm {

struct TokenizerTrainOptions {
  std::string type = "bpe";      // bpe | unigram
  int64_t vocab = 4096;          // pieces in all (specials and the 256 byte pieces included)
  int64_t max_bytes = 64 << 20;  // train on at most this many bytes of the input (the start of it)
  int threads = 2;
};

class Tokenizer {
 public:
  Tokenizer();
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // A SentencePiece model file (tokenizer.model); Error with the path if it is missing or not a valid model,
  // or was not trained for lossless bytes (no byte fallback, or a normalisation other than identity).
  static Tokenizer load(const std::string& path);
  static Tokenizer from_serialized(const std::string& model_proto, const std::string& what);
  // Trains on `texts` (raw bytes: file contents), each cut into lines of at most 2,000 bytes. Error on
  // bad options or when SentencePiece refuses (e.g. a vocabulary too large for the text).
  static Tokenizer train(const std::vector<std::string>& texts, const TokenizerTrainOptions& opt);

  void save(const std::string& path) const;  // atomically
  const std::string& serialized() const { return proto_; }

  std::vector<int32_t> encode(const uint8_t* data, int64_t n) const;
  std::vector<int32_t> encode(const std::string& bytes) const {
    return encode(reinterpret_cast<const uint8_t*>(bytes.data()), int64_t(bytes.size()));
  }
  std::string decode(const std::vector<int32_t>& ids) const;  // the exact bytes

  int64_t vocab_size() const { return int64_t(text_.size()); }
  // The escaped bytes token `id` stands for ("" for control pieces); unescape_bytes() of a concatenation
  // gives the raw bytes.
  const std::string& token_text(int64_t id) const { return text_.at(size_t(id)); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string proto_;
  std::vector<std::string> text_;
};

// Whether SentencePiece could be loaded (bytelm_spm.so; absent when bytelm was built without
// libsentencepiece-dev). Every other function throws Error saying so when it is not.
bool tokenizer_available();

// The file name of a tokenizer inside a tokenizer or checkpoint directory.
constexpr const char* kTokenizerFile = "tokenizer.model";

// A BPE-baseline checkpoint's tokenizer (dir/tokenizer.model); Error if missing, bad, or its vocabulary is
// not `vocab` pieces (the model's vocab_size).
Tokenizer load_checkpoint_tokenizer(const std::string& dir, int64_t vocab);

}  // namespace bytelm
