#include <doctest/doctest.h>

#include "tagwho/tag.hpp"

using tagwho::Tag;

TEST_CASE("tags parse as poolmon shows them") {
  CHECK(Tag::parse("Leak")->value == 0x6b61654cu);
  CHECK(Tag::parse("Cc")->value == 0x20206343u);  // padded with spaces
  CHECK(Tag::parse("Cc")->display() == "Cc  ");
  CHECK(Tag::parse("Dh 0")->display() == "Dh 0");
  CHECK(Tag::parse("0x6b61654c")->display() == "Leak");
  CHECK(Tag::parse("0X6B61654C")->value == 0x6b61654cu);
  CHECK(Tag::parse("0x12")->value == 0x32317830u);  // four characters, not a number
  CHECK(Tag::parse("\\x84\\x31")->value == 0x20203184u);
  CHECK(Tag::parse("L\\x65ak")->display() == "Leak");
  CHECK(Tag::parse("a\\\\b")->display() == "a\\b ");
}

TEST_CASE("bad tags are errors with a reason") {
  CHECK(Tag::parse("").error().find("empty") != std::string::npos);
  CHECK(Tag::parse("Leaky").error().find("longer than 4") != std::string::npos);
  CHECK(Tag::parse("L\x01").error().find("non-printable") != std::string::npos);
  CHECK(Tag::parse("L\xc3\xa9").error().find("non-ASCII") != std::string::npos);
  CHECK(Tag::parse("\\x4").error().find("two hex digits") != std::string::npos);
  CHECK(Tag::parse("\\xzz").error().find("two hex digits") != std::string::npos);
  CHECK_FALSE(Tag::parse("0x6b61654g").ok());  // ten characters, not hex, too long for a tag
}

TEST_CASE("display escapes non-printable bytes and round-trips") {
  for (uint32_t value : {0x6b61654cu, 0x00003184u, 0xffffffffu, 0x20202020u, 0x5c5c5c5cu}) {
    Tag tag{value};
    auto reparsed = Tag::parse(tag.display());
    // backslashes display as is; "\\\\" would be needed to type them, so skip that value's round trip
    if (value != 0x5c5c5c5cu) CHECK(reparsed->value == value);
    CHECK(Tag::parse(tag.hex())->value == value);
  }
  CHECK(Tag{0x00003184u}.display() == "\\x841\\x00\\x00");  // 0x31 is the printable "1"
  CHECK(Tag{0xeb61654cu}.without_protected_bit().display() == "Leak");
  CHECK(Tag{0x6b61654cu}.with_protected_bit().hex() == "0xeb61654c");
}
