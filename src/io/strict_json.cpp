// strict_json.cpp — see strict_json.h.
#include "io/strict_json.h"

#include <cstring>
#include <set>
#include <vector>

#include "io/atomic_file.h"
#include "util/error.h"
#include "util/text.h"

namespace bytelm {

namespace {

// Thrown from the parser's callback to stop it at once; turned into an Error by parse_strict_json.
struct Refused {
  std::string why;
};

std::string short_line(const std::string& text, size_t max_chars = 200) {
  std::string line = printable_line(text);
  return line.size() > max_chars ? line.substr(0, max_chars) + "..." : line;
}

}  // namespace

nlohmann::json parse_strict_json(const char* begin, const char* end, const std::string& where) {
  if (const void* nul = std::memchr(begin, 0, size_t(end - begin)))
    throw Error(where + ": NUL byte at offset " + std::to_string(static_cast<const char*>(nul) - begin));
  std::vector<std::set<std::string>> open_objects;
  using Event = nlohmann::json::parse_event_t;
  nlohmann::json::parser_callback_t check = [&](int depth, Event event, nlohmann::json& parsed) {
    // depth: the containers around this one (0 for the outermost).
    if ((event == Event::object_start || event == Event::array_start) && depth >= kMaxJsonDepth)
      throw Refused{"nested deeper than " + std::to_string(kMaxJsonDepth) + " levels"};
    if (event == Event::object_start) {
      open_objects.emplace_back();
    } else if (event == Event::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == Event::key && !open_objects.empty()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second) throw Refused{"duplicate key '" + short_line(key, 80) + "'"};
    }
    return true;
  };
  try {
    return nlohmann::json::parse(begin, end, check);
  } catch (const Refused& r) {
    throw Error(where + ": " + r.why);
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": invalid JSON (" + short_line(e.what()) + ")");
  }
}

nlohmann::json parse_strict_json(const std::string& text, const std::string& where) {
  return parse_strict_json(text.data(), text.data() + text.size(), where);
}

nlohmann::json read_strict_json(const std::string& path) { return parse_strict_json(read_file(path), path); }

}  // namespace bytelm
