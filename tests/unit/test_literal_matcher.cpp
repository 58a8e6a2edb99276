#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>

#include "tagwho/literal_matcher.hpp"
#include "tagwho/report.hpp"

using namespace tagwho;

namespace {
ByteView view_of(const std::string& bytes) {
  return ByteView(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

std::string hit_text(const LiteralHit& hit) {
  return std::to_string(hit.offset) + " " + std::to_string(hit.tag_index) + " " + std::to_string(hit.protected_bit) +
         " " + literal_encoding_name(hit.encoding) + " " + std::to_string(hit.reg) + " " + std::to_string(hit.wide);
}

// Every hit of the tags in bytes, one line each, from the engine given.
std::vector<std::string> hits_of(const std::vector<Tag>& tags, ByteView bytes, LiteralMatcher::Engine engine) {
  auto matcher = LiteralMatcher::build(tags, false, engine);
  REQUIRE(matcher.ok());
  auto scratch = matcher->make_scratch();
  REQUIRE(scratch);
  auto hits = matcher->scan(bytes, *scratch);
  REQUIRE(hits.ok());
  std::vector<std::string> lines;
  for (const LiteralHit& hit : *hits) lines.push_back(hit_text(hit));
  return lines;
}

// Tags read from the bytes at random offsets (so that they are found, some of them often), plus random ones.
std::vector<Tag> tags_from(ByteView bytes, size_t count, std::mt19937& random) {
  std::vector<Tag> tags;
  for (size_t i = 0; i < count && bytes.size() >= 4; ++i) {
    const uint64_t offset = random() % (bytes.size() - 3);
    tags.push_back(Tag{*bytes.u32(offset)});
  }
  for (size_t i = 0; i < count; ++i) tags.push_back(Tag{static_cast<uint32_t>(random())});
  return tags;
}

// The sample drivers and the generated corpus's drivers (when TAGWHO_CORPUS_DIR names it) of up to 4 MB.
std::vector<std::filesystem::path> small_drivers() {
  std::vector<std::string> dirs{std::string(TAGWHO_SOURCE_DIR) + "/samples/bin"};
  if (const char* corpus = std::getenv("TAGWHO_CORPUS_DIR"); corpus && std::filesystem::is_directory(corpus))
    dirs.push_back(corpus);
  std::vector<std::filesystem::path> files;
  for (const std::string& dir : dirs)
    for (const auto& entry : std::filesystem::directory_iterator(dir))
      if (entry.is_regular_file() && entry.file_size() <= (size_t{4} << 20)) files.push_back(entry.path());
  return files;
}

}  // namespace

TEST_CASE("the hash table engine finds exactly the hits Hyperscan finds") {
  std::mt19937 random(7);
  SUBCASE("made-up bytes: hits at both ends, overlapping, a tag given twice, NULs, protected variants") {
    std::string bytes = "Leak";
    bytes += std::string("\x00\x01\x02\x03", 4);
    bytes += "aaaaaLea";
    bytes += '\xeb';
    for (int i = 0; i < 3000; ++i) bytes += static_cast<char>(random());
    bytes += "Tail";
    std::vector<Tag> tags = {*Tag::parse("Leak"), *Tag::parse("\\x00\\x01\\x02\\x03"), *Tag::parse("aaaa"),
                             *Tag::parse("Leak"), *Tag::parse("Tail")};
    const std::vector<std::string> table = hits_of(tags, view_of(bytes), LiteralMatcher::Engine::table);
    CHECK(table == hits_of(tags, view_of(bytes), LiteralMatcher::Engine::hyperscan));
    CHECK(table.front() == "0 0 0 bytes 0 0");
    CHECK(table.back() == std::to_string(bytes.size() - 4) + " 4 0 bytes 0 0");
    CHECK(std::count(table.begin(), table.end(), "0 3 0 bytes 0 0") == 1);  // the second "Leak"
    CHECK(std::count(table.begin(), table.end(), "13 0 1 bytes 0 0") == 1);  // 'Lea' | 0x80
    CHECK(std::count_if(table.begin(), table.end(), [](const std::string& l) { return l.find(" 2 0 bytes") != std::string::npos; }) == 2);
  }
  SUBCASE("the sample drivers and the generated corpus, with thousands of tags") {
    size_t files = 0, hits = 0;
    for (const std::filesystem::path& path : small_drivers()) {
      std::ifstream in(path, std::ios::binary);
      const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
      const ByteView view(bytes.data(), bytes.size());
      const std::vector<Tag> tags = tags_from(view, files % 2 ? 3000 : 20, random);
      if (tags.empty()) continue;
      const std::vector<std::string> table = hits_of(tags, view, LiteralMatcher::Engine::table);
      CHECK_MESSAGE(table == hits_of(tags, view, LiteralMatcher::Engine::hyperscan), path.string());
      ++files;
      hits += table.size();
    }
    CHECK(files >= 15);
    CHECK(hits >= 20 * files);
  }
}

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
  auto hits = matcher.scan(view_of(bytes), *scratch);
  REQUIRE(hits.ok());
  CHECK(hits->empty());  // the tag's own bytes are never there
  return matcher.count_prefilter(view_of(bytes), *scratch, places);
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

TEST_CASE("search prefilter: the choice idiom is found at every offset, in the vector scan and in its tail") {
  const Tag tag = *Tag::parse("Qzxw");
  auto matcher = LiteralMatcher::build({tag}, true);
  REQUIRE(matcher.ok());
  const uint32_t other = 0x01020304;  // (neither immediate is a nearby constant of the tag)
  const std::string idiom = std::string("\x25") + le32_bytes(tag.value - other) + "\x05" + le32_bytes(other);
  const std::string with_rex = std::string("\x48\x81\xe1", 3) + le32_bytes(tag.value + other) +
                               std::string("\x48\x81\xe9", 3) + le32_bytes(other);
  // 60 bytes: three 16-byte blocks and a 12-byte tail; each idiom at every offset it fits at.
  for (const std::string& form : {idiom, with_rex})
    for (size_t offset = 0; offset + form.size() <= 60; ++offset) {
      CAPTURE(offset);
      std::string bytes(60, '\x90');
      bytes.replace(offset, form.size(), form);
      CHECK(prefilter_hits_in(*matcher, bytes) == 1);
    }
  // Every pair of forms: AND eax / AND reg / REX AND reg, then ADD or SUB of eax, of a register, with a REX.
  struct Second {
    std::string opcode;
    bool add;
  };
  const std::vector<std::string> firsts = {"\x25", "\x81\xe2", "\x49\x81\xe7"};
  const std::vector<Second> seconds = {{"\x05", true}, {"\x2d", false}, {"\x81\xc3", true},
                                       {"\x81\xee", false}, {"\x4c\x81\xc1", true}};
  for (const std::string& first : firsts)
    for (const Second& second : seconds) {
      const uint32_t mask = second.add ? tag.value - other : tag.value + other;
      const std::string form = first + le32_bytes(mask) + second.opcode + le32_bytes(other);
      for (size_t offset = 0; offset + form.size() <= 60; ++offset) {
        CAPTURE(first.size());
        CAPTURE(second.opcode.size());
        CAPTURE(offset);
        std::string bytes(60, '\x90');
        bytes.replace(offset, form.size(), form);
        CHECK(prefilter_hits_in(*matcher, bytes) == 1);
      }
    }
  // Every occurrence is counted without places: two idioms, and 0x25/0x81 bytes that start none.
  std::string two = "\x81\x25" + idiom + std::string(20, '\x81') + with_rex + "\x25";
  CHECK(prefilter_hits_in(*matcher, two) == 2);
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
  // ... of x86 or x64 code: an ARM64 image's analysis never reads x86 instructions. A nearby constant
  // still counts there (ARM64 CINC).
  PrefilterPlaces arm64 = places;
  arm64.x86_code = false;
  CHECK(prefilter_hits_in(*matcher, at(0x21, idiom), &arm64) == 0);
  CHECK(prefilter_hits_in(*matcher, at(0x41, nearby), &arm64) == 1);
}

namespace {

// What a scan in windows of `step` bytes finds: each hit's line, then the prefilter's answer ("hint 0/1",
// "hint -" when the scan did not decide it).
std::vector<std::string> windowed_scan(const LiteralMatcher& matcher, WindowReader windows, bool arm64_words,
                                       const PrefilterPlaces* places) {
  auto scratch = matcher.make_scratch();
  REQUIRE(scratch);
  auto scanned = matcher.scan(windows, *scratch, arm64_words, places);
  REQUIRE(scanned.ok());
  std::vector<std::string> lines;
  for (const LiteralHit& hit : scanned->hits) lines.push_back(hit_text(hit));
  lines.push_back(scanned->prefilter_hint ? "hint " + std::to_string(*scanned->prefilter_hint) : "hint -");
  return lines;
}

// The same from one scan of the whole bytes and count_prefilter (asked only without a hit of a tag's bytes).
std::vector<std::string> whole_scan(const LiteralMatcher& matcher, ByteView bytes, bool arm64_words,
                                    const PrefilterPlaces* places) {
  auto scratch = matcher.make_scratch();
  REQUIRE(scratch);
  auto hits = matcher.scan(bytes, *scratch, arm64_words);
  REQUIRE(hits.ok());
  std::vector<std::string> lines;
  for (const LiteralHit& hit : *hits) lines.push_back(hit_text(hit));
  const bool byte_hit = std::any_of(hits->begin(), hits->end(),
                                    [](const LiteralHit& hit) { return hit.encoding == LiteralEncoding::bytes; });
  lines.push_back(places && matcher.has_prefilter() && !byte_hit
                      ? "hint " + std::to_string(matcher.count_prefilter(bytes, *scratch, places) > 0)
                      : "hint -");
  return lines;
}

}  // namespace

TEST_CASE("a scan in windows finds what one scan of the whole bytes finds, at every window boundary") {
  const Tag tag = *Tag::parse("Qzxw");
  auto matcher = LiteralMatcher::build({tag, *Tag::parse("Leak")}, true);
  REQUIRE(matcher.ok());
  const uint32_t other = 0x01020304;
  const std::string idiom = std::string("\x48\x81\xe1", 3) + le32_bytes(tag.value + other) +
                            std::string("\x48\x81\xe9", 3) + le32_bytes(other);  // 14 bytes: the longest
  const std::string movz = le32_bytes(0x52800000u | uint32_t{tag.value & 0xffff} << 5 | 3);
  const std::string movk = le32_bytes(0xf2a00000u | uint32_t{tag.value >> 16} << 5 | 3);
  PrefilterPlaces places;
  places.code.push_back({0, 96});
  places.data.push_back({96, 128});
  // Each encoding at every offset of a 128-byte buffer, scanned in windows of 16 bytes: every boundary.
  for (const std::string& form : {le32_bytes(tag.value), le32_bytes(tag.with_protected_bit().value), idiom,
                                  le32_bytes(tag.value - 64), movz + movk})
    for (size_t offset = 0; offset + form.size() <= 128; ++offset) {
      CAPTURE(offset);
      std::string bytes(128, '\x90');
      bytes.replace(offset, form.size(), form);
      const ByteView view = view_of(bytes);
      for (const PrefilterPlaces* where : {static_cast<const PrefilterPlaces*>(nullptr), static_cast<const PrefilterPlaces*>(&places)}) {
        const std::vector<std::string> whole = whole_scan(*matcher, view, true, where);
        CHECK(windowed_scan(*matcher, WindowReader(view, 16), true, where) == whole);
        CHECK(windowed_scan(*matcher, WindowReader(view, 4), true, where) == whole);
      }
    }
}

TEST_CASE("a scan in windows read from the file finds what one scan of its mapping finds") {
  std::mt19937 random(11);
  size_t files = 0, hinted = 0;
  for (const std::filesystem::path& path : small_drivers()) {
    auto mapped = MappedFile::open(path.string());
    REQUIRE(mapped.ok());
    const ByteView view = mapped->view();
    // Every other file: tags from its bytes (found), matched by the hash table; else random tags, most
    // of them found nowhere, with the prefilter (which the scan then decides).
    std::vector<Tag> tags = tags_from(view, 4, random);
    if (tags.empty()) continue;
    const bool found = files % 2;
    tags.erase(found ? tags.begin() + 4 : tags.begin(), found ? tags.end() : tags.begin() + 4);
    auto matcher = found ? LiteralMatcher::build(tags, false, LiteralMatcher::Engine::table)
                         : LiteralMatcher::build(tags, true);
    REQUIRE(matcher.ok());
    // The code and data as a PE's sections would give them: the file's halves, for the test.
    PrefilterPlaces places;
    places.code.push_back({0, view.size() / 2});
    places.data.push_back({view.size() / 2, view.size()});
    const std::vector<std::string> whole = whole_scan(*matcher, view, true, &places);
    hinted += whole.back() != "hint -";
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    for (uint64_t step : {uint64_t{4096}, uint64_t{12} << 10, WindowReader::kFileStep}) {
      CAPTURE(step);
      CHECK_MESSAGE(windowed_scan(*matcher, WindowReader(fd, view.size(), step), true, &places) == whole,
                    path.string());
    }
    ::close(fd);
    ++files;
  }
  CHECK(files >= 15);
  CHECK(hinted >= files / 4);
}
