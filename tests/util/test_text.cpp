// test_text.cpp — C escapes (as --stop takes them), base64 (RFC 4648 test vectors), UTF-8 validity.
#include <gtest/gtest.h>

#include "util/error.h"
#include "util/text.h"

TEST(Text, UnescapeC) {
  EXPECT_EQ(bytelm::unescape_c("a\\nb\\tc", "x"), "a\nb\tc");
  EXPECT_EQ(bytelm::unescape_c("\\x41\\x4a\\x0", "x"), std::string("AJ\0", 3));
  EXPECT_EQ(bytelm::unescape_c("\\\\n", "x"), "\\n");
  EXPECT_EQ(bytelm::unescape_c("\\xff", "x"), "\xff");
  EXPECT_EQ(bytelm::unescape_c("plain", "x"), "plain");
  EXPECT_THROW(bytelm::unescape_c("end\\", "x"), bytelm::Error);
  EXPECT_THROW(bytelm::unescape_c("\\xg", "x"), bytelm::Error);
  EXPECT_THROW(bytelm::unescape_c("\\q", "x"), bytelm::Error);
}

TEST(Text, Base64Rfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [in, out] : vectors) EXPECT_EQ(bytelm::base64_encode(in), out) << in;
  EXPECT_EQ(bytelm::base64_encode(std::string("\0\xff\xfe", 3)), "AP/+");
}

TEST(Text, Utf8Validity) {
  EXPECT_TRUE(bytelm::is_utf8("plain ascii"));
  EXPECT_TRUE(bytelm::is_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(bytelm::is_utf8("\xff"));
  EXPECT_FALSE(bytelm::is_utf8("\xc3"));          // truncated
  EXPECT_FALSE(bytelm::is_utf8("\xc0\xaf"));      // overlong
  EXPECT_FALSE(bytelm::is_utf8("\xed\xa0\x80"));  // surrogate
}

TEST(PrintableLine, KeepsUtf8AndEscapesControlAndInvalidBytes) {
  EXPECT_EQ(bytelm::printable_line("plain \xc3\xa9t\xc3\xa9 \xe2\x82\xac"), "plain \xc3\xa9t\xc3\xa9 \xe2\x82\xac");
  EXPECT_EQ(bytelm::printable_line("a\x1b[31mb"), "a\\x1b[31mb");
  EXPECT_EQ(bytelm::printable_line("x\ny\x7f"), "x\\ny\\x7f");
  EXPECT_EQ(bytelm::printable_line(std::string("\xff\xc3", 2)), "\\xff\\xc3");  // invalid and cut sequences
  EXPECT_EQ(bytelm::printable_line(std::string("\0", 1)), "\\x00");
}
