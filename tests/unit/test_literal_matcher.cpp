#include <doctest/doctest.h>

#include <string>

#include "tagwho/literal_matcher.hpp"
#include "tagwho/report.hpp"

using namespace tagwho;

namespace {
ByteView view_of(const std::string& bytes) {
  return ByteView(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}
}  // namespace

TEST_CASE("literal matcher finds every tag and its protected variant at their start offsets") {
  std::vector<Tag> tags = {*Tag::parse("Leak"), *Tag::parse("\\x00\\x01\\x02\\x03")};
  auto matcher = LiteralMatcher::build(tags);
  REQUIRE(matcher.ok());
  std::string bytes = "xxLeakyy";
  bytes += std::string("\x00\x01\x02\x03", 4);
  bytes += "Lea";
  bytes += '\xeb';  // 'Leak' | PROTECTED_POOL: the high bit sits in the last byte
  bytes += "LeakLeak";
  auto scratch = matcher->make_scratch();
  auto hits = matcher->scan(view_of(bytes), *scratch);
  REQUIRE(hits.ok());
  REQUIRE(hits->size() == 5);
  CHECK((*hits)[0].offset == 2);
  CHECK((*hits)[0].tag_index == 0);
  CHECK((*hits)[1].offset == 8);
  CHECK((*hits)[1].tag_index == 1);
  CHECK((*hits)[2].offset == 12);
  CHECK((*hits)[2].protected_bit);
  CHECK((*hits)[3].offset == 16);
  CHECK((*hits)[4].offset == 20);
  CHECK_FALSE((*hits)[4].protected_bit);
}

TEST_CASE("literal matcher on empty and tiny inputs") {
  auto matcher = LiteralMatcher::build({*Tag::parse("Leak")});
  REQUIRE(matcher.ok());
  auto scratch = matcher->make_scratch();
  CHECK(matcher->scan(ByteView(), *scratch)->empty());
  CHECK(matcher->scan(view_of("Lea"), *scratch)->empty());
  CHECK(matcher->scan(view_of("Leak"), *scratch)->size() == 1);
  CHECK_FALSE(LiteralMatcher::build({}).ok());
}

TEST_CASE("json strings escape control bytes and invalid UTF-8") {
  CHECK(json_string("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(json_string(std::string("\x01\n", 2)) == "\"\\u0001\\n\"");
  CHECK(json_string("caf\xc3\xa9") == "\"caf\xc3\xa9\"");
  CHECK(json_string("bad\xff") == "\"bad\\u00ff\"");
  CHECK(json_string("cut\xc3") == "\"cut\\u00c3\"");
}

TEST_CASE("pool types and flags have names") {
  CHECK(pool_type_name(512, false) == "NonPagedPoolNx");
  CHECK(pool_type_name(1 | 0x10, false) == "PagedPool|RAISE_IF_FAILURE");
  CHECK(pool_type_name(1 | 0x8, false) == "PagedPool|QUOTA_FAIL_INSTEAD_OF_RAISE");
  CHECK(pool_type_name(0x40, true) == "POOL_FLAG_NON_PAGED");
  CHECK(pool_type_name(0x41, true) == "POOL_FLAG_USE_QUOTA|POOL_FLAG_NON_PAGED");
  CHECK(pool_type_name(12345, false) == "0x3039");
}

TEST_CASE("printable escapes terminal control bytes and stray bytes, keeps UTF-8") {
  CHECK(printable("a\x1b[31mb") == "a\\x1b[31mb");
  CHECK(printable("caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(printable("\xff.text") == "\\xff.text");
  CHECK(printable("x\x9by") == "x\\x9by");
}

namespace {

std::string le32_bytes(uint32_t v) {
  std::string out;
  for (int i = 0; i < 4; ++i) out += static_cast<char>(v >> (8 * i));
  return out;
}

size_t prefilter_hits_in(const LiteralMatcher& matcher, const std::string& bytes,
                         const PrefilterPlaces* places = nullptr) {
  auto scratch = matcher.make_scratch();
  REQUIRE(scratch);
  size_t count = 0;
  auto hits = matcher.scan(view_of(bytes), *scratch, &count, true, places);
  REQUIRE(hits.ok());
  CHECK(hits->empty());  // the tag's own bytes are never there
  return count;
}

}  // namespace

TEST_CASE("search prefilter: the branchless choice idiom counts only when it computes a requested tag") {
  const Tag tag = *Tag::parse("Qzxw");
  auto matcher = LiteralMatcher::build({tag}, true);
  REQUIRE(matcher.ok());
  const uint32_t other = 0x01020304;
  const std::string pad = "\x90\x90\x90";
  // neg eax; sbb eax, eax; and eax, (tag - other); add eax, other  -> the tag when the mask is all ones
  const std::string and_eax = std::string("\x25") + le32_bytes(tag.value - other);
  CHECK(prefilter_hits_in(*matcher, pad + and_eax + "\x05" + le32_bytes(other) + pad) == 1);
  // and ecx, imm; sub ecx, imm (81 /4, 81 /5) with a REX prefix: tag = mask - other
  const std::string and_rcx = std::string("\x48\x81\xe1", 3) + le32_bytes(tag.value + other);
  CHECK(prefilter_hits_in(*matcher, pad + and_rcx + std::string("\x48\x81\xe9", 3) + le32_bytes(other) + pad) == 1);
  // The same idiom computing another value is not a reason to decode the file.
  CHECK(prefilter_hits_in(*matcher, pad + and_eax + "\x05" + le32_bytes(other + 1) + pad) == 0);
  CHECK(prefilter_hits_in(*matcher, pad + and_rcx + std::string("\x48\x81\xc1", 3) + le32_bytes(other) + pad) == 0);
  // The protected-bit variant of the tag counts too.
  const uint32_t guarded = tag.with_protected_bit().value;
  CHECK(prefilter_hits_in(*matcher, pad + std::string("\x25") + le32_bytes(guarded - other) + "\x05" +
                                        le32_bytes(other) + pad) == 1);
  // A nearby constant (tag + 1) still counts.
  CHECK(prefilter_hits_in(*matcher, pad + le32_bytes(tag.value + 1) + pad) == 1);
}

TEST_CASE("search prefilter: matches count only where the analysis could use them") {
  const Tag tag = *Tag::parse("Qzxw");
  auto matcher = LiteralMatcher::build({tag}, true);
  REQUIRE(matcher.ok());
  // 0x000-0x100 code, 0x100-0x200 data, then the overlay.
  PrefilterPlaces places;
  places.code.push_back({0x000, 0x100});
  places.data.push_back({0x100, 0x200});
  const std::string nearby = le32_bytes(tag.value + 1);
  const std::string idiom = std::string("\x25") + le32_bytes(tag.value - 7) + "\x05" + le32_bytes(7);
  const auto at = [](size_t offset, const std::string& what) {
    std::string bytes(0x300, '\x90');
    bytes.replace(offset, what.size(), what);
    return bytes;
  };
  // A nearby constant: in code at any offset; in data only 4-byte aligned (a global); never in the overlay.
  CHECK(prefilter_hits_in(*matcher, at(0x41, nearby), &places) == 1);
  CHECK(prefilter_hits_in(*matcher, at(0x140, nearby), &places) == 1);
  CHECK(prefilter_hits_in(*matcher, at(0x141, nearby), &places) == 0);
  CHECK(prefilter_hits_in(*matcher, at(0x240, nearby), &places) == 0);
  CHECK(prefilter_hits_in(*matcher, at(0x141, nearby)) == 1);  // no places: every match counts
  // The choice idiom is code: in code only.
  CHECK(prefilter_hits_in(*matcher, at(0x21, idiom), &places) == 1);
  CHECK(prefilter_hits_in(*matcher, at(0x140, idiom), &places) == 0);
  CHECK(prefilter_hits_in(*matcher, at(0x140, idiom)) == 1);
}
