// text.h — small byte-string helpers for the CLI and JSON output: C escapes in flags, base64 for bytes
// that JSON strings cannot carry losslessly. Torch-free.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace bytelm {

// Decodes C escapes: \n \t \r \0 \\ \" \' \a \b \f \v and \xHH (one or two hex digits). Throws Error naming
// `what` on a malformed escape (a trailing backslash, \x without hex digits, an unknown letter).
std::string unescape_c(const std::string& s, const std::string& what);

// Standard base64 (RFC 4648, with '=' padding).
std::string base64_encode(const std::string& bytes);

// True if `s` is valid UTF-8 (so it round-trips through a JSON string).
bool is_utf8(const std::string& s);

// `s` safe to print on one terminal line: valid UTF-8 characters kept; control bytes, DEL and bytes that are
// not UTF-8 written as \xNN (a newline as \n). Error lines pass through it: they may quote hostile files.
std::string printable_line(const std::string& s);

// Where patches start, against how common each kind of byte is: the share of starts at whitespace and at a
// word start (a letter or digit after a byte that is neither), and the same shares over all bytes.
struct BoundaryProfile {
  double starts_at_whitespace = 0, starts_at_word_start = 0, bytes_whitespace = 0, bytes_word_start = 0;
};
// starts: byte offsets into `bytes` where patches start.
BoundaryProfile boundary_profile(const std::string& bytes, const std::vector<int64_t>& starts);

}  // namespace bytelm
