// test_strict_json.cpp — JSON from hostile files: duplicate keys, deep nesting and NUL bytes are refused with
// one printable line naming the place; ordinary JSON parses as nlohmann parses it.
#include <gtest/gtest.h>

#include <string>

#include "io/strict_json.h"
#include "util/error.h"

namespace {

std::string error_of(const std::string& text) {
  try {
    bytelm::parse_strict_json(text, "f.json");
  } catch (const bytelm::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(StrictJson, ParsesOrdinaryJson) {
  const auto j = bytelm::parse_strict_json(R"({"a": {"b": [1, 2, {"c": null}]}, "d": "x"}  )", "f.json");
  EXPECT_EQ(j["a"]["b"][2].size(), 1u);
  EXPECT_EQ(j["d"], "x");
  // The same key in different objects is fine.
  EXPECT_EQ(error_of(R"({"a": {"k": 1}, "b": {"k": 2}})"), "");
}

TEST(StrictJson, RefusesDuplicatesDepthAndNul) {
  EXPECT_EQ(error_of(R"({"k": 1, "j": {"x": 1, "x": 2}})"), "f.json: duplicate key 'x'");
  EXPECT_EQ(error_of(std::string(65, '[') + std::string(65, ']')), "f.json: nested deeper than 64 levels");
  EXPECT_EQ(error_of(std::string(64, '[') + std::string(64, ']')), "");
  EXPECT_EQ(error_of(std::string("{}\0 {\"a\":1}", 11)), "f.json: NUL byte at offset 2");
  // A duplicate key that is hostile text is quoted printably.
  EXPECT_EQ(error_of("{\"\\u001b\": 1, \"\\u001b\": 2}"), "f.json: duplicate key '\\x1b'");
  const std::string bad = error_of("{\"a\": \x01}");
  EXPECT_EQ(bad.rfind("f.json: invalid JSON (", 0), 0u) << bad;
  EXPECT_EQ(bad.find('\x01'), std::string::npos);
}
