// text.cpp — see text.h.
#include "util/text.h"

#include <algorithm>
#include <cctype>
#include <cstdint>

#include "util/error.h"

namespace bytelm {

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::string unescape_c(const std::string& s, const std::string& what) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out.push_back(s[i]);
      continue;
    }
    if (++i == s.size()) throw Error(what + ": a trailing backslash (write \\\\ for a backslash)");
    switch (s[i]) {
      case 'n':
        out.push_back('\n');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case '0':
        out.push_back('\0');
        break;
      case 'a':
        out.push_back('\a');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'v':
        out.push_back('\v');
        break;
      case '\\':
      case '"':
      case '\'':
        out.push_back(s[i]);
        break;
      case 'x': {
        int value = 0, digits = 0;
        while (digits < 2 && i + 1 < s.size() && hex_value(s[i + 1]) >= 0)
          value = value * 16 + hex_value(s[++i]), ++digits;
        if (digits == 0) throw Error(what + ": \\x needs one or two hex digits");
        out.push_back(char(value));
        break;
      }
      default:
        throw Error(what + ": unknown escape \\" + std::string(1, s[i]));
    }
  }
  return out;
}

std::string base64_encode(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 | uint8_t(bytes[i + 2]);
    for (int k = 3; k >= 0; --k) out.push_back(kAlphabet[(v >> (6 * k)) & 63]);
  }
  if (i < bytes.size()) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (i + 1 < bytes.size()) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if the bytes there are not one.
size_t utf8_length_at(const std::string& s, size_t i) {
  const uint8_t c = uint8_t(s[i]);
  const size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (len == 0 || i + len > s.size()) return 0;
  uint32_t cp = len == 1 ? c : c & (0x7f >> len);
  for (size_t k = 1; k < len; ++k) {
    const uint8_t d = uint8_t(s[i + k]);
    if ((d >> 6) != 0x2) return 0;
    cp = cp << 6 | (d & 0x3f);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
      (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
    return 0;
  return len;
}

}  // namespace

bool is_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const size_t len = utf8_length_at(s, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::string printable_line(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t len = utf8_length_at(s, i);
    const uint8_t c = uint8_t(s[i]);
    if (len > 1 || (len == 1 && c >= 0x20 && c != 0x7f)) {
      out.append(s, i, len);
      i += len;
      continue;
    }
    static const char* hex = "0123456789abcdef";
    out += c == '\n' ? std::string("\\n") : std::string("\\x") + hex[c >> 4] + hex[c & 15];
    ++i;
  }
  return out;
}

BoundaryProfile boundary_profile(const std::string& bytes, const std::vector<int64_t>& starts) {
  auto is_space = [](unsigned char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; };
  auto alnum = [](unsigned char c) { return std::isalnum(c) != 0; };
  auto word_start = [&](size_t i) { return alnum(bytes[i]) && (i == 0 || !alnum(bytes[i - 1])); };
  BoundaryProfile p;
  if (bytes.empty()) return p;
  for (size_t i = 0; i < bytes.size(); ++i) {
    p.bytes_whitespace += is_space(bytes[i]);
    p.bytes_word_start += word_start(i);
  }
  for (int64_t b : starts) {
    if (b < 0 || size_t(b) >= bytes.size()) continue;
    p.starts_at_whitespace += is_space(bytes[size_t(b)]);
    p.starts_at_word_start += word_start(size_t(b));
  }
  const double n = double(bytes.size()), k = double(std::max<size_t>(1, starts.size()));
  p.bytes_whitespace /= n;
  p.bytes_word_start /= n;
  p.starts_at_whitespace /= k;
  p.starts_at_word_start /= k;
  return p;
}

}  // namespace bytelm
