// byte_escape.cpp — the escaped form of arbitrary bytes (see byte_escape.h).
#include "tokenizer/byte_escape.h"

#include <algorithm>

namespace bytelm {

namespace {

constexpr uint32_t kEscapeBase = 0x10FF00;  // U+10FF00 + b stands for raw byte b
constexpr uint32_t kSpaceSymbol = 0x2581;   // SentencePiece's "▁"

// Length of the valid UTF-8 character at data[0, n), with its code point; 0 if the bytes there are not one.
int utf8_char(const uint8_t* s, int64_t n, uint32_t* cp) {
  const uint8_t c = s[0];
  if (c < 0x80) return *cp = c, 1;
  auto cont = [&](int i) { return i < n && (s[i] & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) {
    if (!cont(1)) return 0;
    *cp = (uint32_t(c & 0x1F) << 6) | (s[1] & 0x3F);
    return 2;
  }
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F)) return 0;  // overlong, surrogate
    *cp = (uint32_t(c & 0x0F) << 12) | (uint32_t(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F)) return 0;  // overlong, > U+10FFFF
    *cp = (uint32_t(c & 0x07) << 18) | (uint32_t(s[1] & 0x3F) << 12) | (uint32_t(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
  }
  return 0;
}

void put_escape(std::string& out, uint8_t b) {
  const uint32_t cp = kEscapeBase + b;
  out += char(0xF0 | (cp >> 18));
  out += char(0x80 | ((cp >> 12) & 0x3F));
  out += char(0x80 | ((cp >> 6) & 0x3F));
  out += char(0x80 | (cp & 0x3F));
}

// Escape prefix F4 8F [BC-BF] [80-BF]: how many of s[0, n) match it (4 = a whole escape).
int escape_match(const uint8_t* s, int64_t n) {
  if (n < 1 || s[0] != 0xF4) return 0;
  if (n < 2 || s[1] != 0x8F) return 1;
  if (n < 3 || s[2] < 0xBC || s[2] > 0xBF) return 2;
  if (n < 4 || (s[3] & 0xC0) != 0x80) return 3;
  return 4;
}

}  // namespace

std::string escape_bytes(const uint8_t* data, int64_t n) {
  std::string out;
  out.reserve(size_t(n));
  for (int64_t i = 0; i < n;) {
    uint32_t cp = 0;
    const int len = utf8_char(data + i, n - i, &cp);
    if (len == 0 || cp == 0 || cp == kSpaceSymbol || cp >= kEscapeBase) {
      for (int k = 0; k < std::max(len, 1); ++k) put_escape(out, data[i + k]);
      i += std::max(len, 1);
    } else {
      out.append(reinterpret_cast<const char*>(data + i), size_t(len));
      i += len;
    }
  }
  return out;
}

std::string unescape_bytes(const std::string& escaped) {
  std::string out;
  out.reserve(escaped.size());
  const auto* s = reinterpret_cast<const uint8_t*>(escaped.data());
  const int64_t n = int64_t(escaped.size());
  for (int64_t i = 0; i < n;) {
    if (escape_match(s + i, n - i) == 4) {
      out += char(((s[i + 2] - 0xBC) << 6) | (s[i + 3] & 0x3F));
      i += 4;
    } else {
      out += char(s[i++]);
    }
  }
  return out;
}

std::string StreamUnescaper::push(const std::string& escaped) {
  pending_ += escaped;
  // Hold back a tail that could still grow into an escape (at most 3 bytes, starting with F4).
  const auto* s = reinterpret_cast<const uint8_t*>(pending_.data());
  const int64_t n = int64_t(pending_.size());
  int64_t keep_from = n;
  for (int64_t i = std::max<int64_t>(0, n - 3); i < n; ++i)
    if (s[i] == 0xF4 && escape_match(s + i, n - i) == n - i) {
      keep_from = i;
      break;
    }
  std::string out = unescape_bytes(pending_.substr(0, size_t(keep_from)));
  pending_.erase(0, size_t(keep_from));
  return out;
}

std::string StreamUnescaper::flush() {
  std::string out = unescape_bytes(pending_);
  pending_.clear();
  return out;
}

}  // namespace bytelm
