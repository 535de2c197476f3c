// strict_json.h — JSON from files that may be hostile (checkpoint configs, safetensors headers, plans, run
// records): nlohmann's parser with the checks it lacks. Torch-free.
#pragma once
#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

namespace bytelm {

// Nesting deeper than this is refused (configs, headers and plans nest 4 levels at most).
constexpr int kMaxJsonDepth = 64;

// Parses [begin, end) as one JSON value and refuses, with an Error starting "where: ", what plain parsing
// lets through: a key given twice in one object (plain parsing keeps the last, silently), nesting deeper
// than kMaxJsonDepth (checked while parsing, before memory grows), and NUL bytes (which end nlohmann's
// parse early, hiding what follows). The parser's own messages are kept to one printable line.
nlohmann::json parse_strict_json(const char* begin, const char* end, const std::string& where);
nlohmann::json parse_strict_json(const std::string& text, const std::string& where);
// read_file(path) parsed strictly; errors name the path.
nlohmann::json read_strict_json(const std::string& path);

}  // namespace bytelm
