// byte_escape.h — a reversible mapping from any bytes to valid UTF-8, so a SentencePiece tokenizer (which
// reads UTF-8 and replaces malformed input with U+FFFD) can take binary files and give back the exact bytes.
//
// Escaped form: every valid UTF-8 character passes through unchanged, except the escape set, which is
// written byte by byte as escapes; an escape for raw byte b is the code point U+10FF00 + b (4 bytes in
// UTF-8: F4 8F BC|b>>6 80|b&63). The escape set is: bytes that are not part of a valid UTF-8 character,
// NUL, U+2581 (SentencePiece's space symbol, which its pieces use for ' '), and U+10FF00..U+10FFFF (the
// escapes themselves). So unescape(escape(x)) == x for every x, and valid text without those characters is
// its own escaped form. Torch-free.
#pragma once
#include <cstdint>
#include <string>

namespace bytelm {

std::string escape_bytes(const uint8_t* data, int64_t n);
// Inverse of escape_bytes. Bytes that are not escapes are copied as they are (so it accepts any input).
std::string unescape_bytes(const std::string& escaped);

// Unescaping a stream of pieces (generation): an escape may be split across tokens, so a trailing prefix of
// one is held back until the next push() or flush().
class StreamUnescaper {
 public:
  std::string push(const std::string& escaped);  // the raw bytes that are complete so far
  std::string flush();                           // everything held back, as it is
 private:
  std::string pending_;
};

}  // namespace bytelm
