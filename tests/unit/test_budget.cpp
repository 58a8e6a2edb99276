// Per-file limits (core/budget.hpp): what stops an analysis, what does not, and that a stop leaves the
// thread's budget as it was.
#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <map>
#include <thread>

#include <unistd.h>

#include "core/budget.hpp"
#include "scan/analyse.hpp"

using namespace tagwho;

namespace {

std::vector<uint8_t> sample(const char* name) {
  std::ifstream in(std::string(TAGWHO_SOURCE_DIR) + "/samples/bin/" + name, std::ios::binary);
  REQUIRE(in);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// Ticks until the clock has been read at least once more than `ticks` times' worth.
void tick_many(size_t ticks) {
  for (size_t i = 0; i < ticks; ++i) budget::tick();
}

}  // namespace

TEST_CASE("outside a budget, ticks and charges never stop anything") {
  tick_many(100000);
  budget::charge(uint64_t{1} << 62);
  budget::release(uint64_t{1} << 62);
  CHECK(budget::try_charge(uint64_t{1} << 62));
  CHECK(budget::try_tick());
}

TEST_CASE("a time limit stops at the first clock reading past the deadline, not before") {
  {
    budget::Scope scope(FileLimits{60, 0});
    CHECK_NOTHROW(tick_many(100000));  // well within a minute
  }
  budget::Scope scope(FileLimits{0.001, 0});
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK_THROWS_WITH_AS(tick_many(10000), "analysis stopped: over the per-file time limit of 0.001 s (--file-timeout)",
                       budget::Exceeded);
}

TEST_CASE("a memory limit counts what is held: released bytes can be charged again") {
  budget::Scope scope(FileLimits{0, 1000});
  budget::charge(600);
  CHECK_FALSE(budget::try_charge(500));  // not charged when refused
  budget::release(600);
  CHECK(budget::try_charge(500));
  budget::charge(400);
  CHECK_THROWS_AS(budget::charge(200), budget::Exceeded);
  budget::release(900);
  CHECK_NOTHROW(budget::charge(1000));
}

TEST_CASE("scopes nest: an inner file's budget does not leak into the outer one") {
  budget::Scope outer(FileLimits{0, 1000});
  budget::charge(900);
  {
    budget::Scope inner(FileLimits{0, 0});  // no limits at all
    CHECK_NOTHROW(budget::charge(uint64_t{1} << 40));
  }
  CHECK_THROWS_AS(budget::charge(200), budget::Exceeded);
}

TEST_CASE("a stopped analysis reports one error and no findings, then the next file is analysed whole") {
  std::vector<uint8_t> bytes = sample("leak-clang-x64.sys");
  ByteView view(bytes.data(), bytes.size());
  std::vector<Tag> tags{*Tag::parse("Leak")};
  auto matcher = LiteralMatcher::build(tags);
  REQUIRE(matcher.ok());
  FileResult stopped = analyse_file_bytes("leak.sys", view, false, tags, &*matcher, true, FileLimits{1e-9, 0});
  REQUIRE(stopped.report.errors.size() == 1);
  CHECK(stopped.report.errors[0].find("over the per-file time limit") != std::string::npos);
  CHECK(stopped.report.findings.empty());
  FileResult small = analyse_file_bytes("leak.sys", view, false, tags, &*matcher, true, FileLimits{0, bytes.size() / 2});
  REQUIRE(small.report.errors.size() == 1);
  CHECK(small.report.errors[0].find("over the per-file memory limit") != std::string::npos);
  FileResult whole = analyse_file_bytes("leak.sys", view, false, tags, &*matcher, true, FileLimits{});
  CHECK(whole.report.errors.empty());
  REQUIRE(whole.report.findings.size() == 1);
  CHECK(whole.report.findings[0].best == Confidence::call);
}

TEST_CASE("discarded pages read as zeros; the bytes around them, in partial pages, are kept") {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  std::vector<uint8_t> block(64 * page, 0xab);
  // From the middle of page 3 to the middle of page 40: pages 4 to 39 are wholly inside.
  const size_t from = 3 * page + 100, to = 40 * page + 7;
  const uint8_t* base = block.data();
  const size_t first = ((reinterpret_cast<uintptr_t>(base + from) + page - 1) & ~(page - 1)) - reinterpret_cast<uintptr_t>(base);
  const size_t last = (reinterpret_cast<uintptr_t>(base + to) & ~(page - 1)) - reinterpret_cast<uintptr_t>(base);
  REQUIRE(first < last);
  budget::discard_pages(base + from, base + to);
  size_t zeros = 0;
  for (size_t i = 0; i < block.size(); ++i) {
    const bool discarded = i >= first && i < last;
    if (block[i] != (discarded ? 0 : 0xab)) FAIL_CHECK("byte " << i << " is " << int(block[i]));
    zeros += block[i] == 0;
  }
  CHECK(zeros == last - first);
  CHECK(zeros >= 35 * page);
  budget::discard_pages(base + to, base + from);  // an empty range: nothing happens
  budget::discard_pages(base + 10, base + 20);    // no whole page: nothing happens
  CHECK(block[10] == 0xab);
}

TEST_CASE("grouping many items by tag keeps every item, strongest first, tags in character order") {
  // Enough items that the input's emptied tail is handed back several times while the findings fill.
  std::vector<Evidence> items;
  const char* names[] = {"Zzzz", "Leak", "Abcd", "Leal", "Mmmm"};
  std::map<std::string, size_t> expected;
  std::map<std::string, Confidence> best;
  for (uint32_t i = 0; i < 30000; ++i) {
    Evidence e;
    const char* name = names[(i * 7) % 5];
    e.tag = *Tag::parse(name);
    if (i % 11 == 0) e.tag = Tag{e.tag.value | 0x80000000u};  // the protected bit: the same tag
    e.kind = static_cast<Confidence>((i / 5) % 5);
    e.rva = 0x100000 - i;  // distinct, and decreasing as the items come in
    e.api = "ExAllocatePoolWithTag";
    items.push_back(e);
    ++expected[name];
    best[name] = std::max(best[name], e.kind);
  }
  const std::vector<Finding> findings = group_by_tag(std::move(items));
  REQUIRE(findings.size() == 5);
  for (const auto& [name, kind] : best) CHECK(kind == Confidence::call);  // (every tag has every kind)
  const char* in_order[] = {"Abcd", "Leak", "Leal", "Mmmm", "Zzzz"};
  for (size_t f = 0; f < findings.size(); ++f) {
    const Finding& finding = findings[f];
    CAPTURE(in_order[f]);
    CHECK(finding.tag == *Tag::parse(in_order[f]));
    CHECK(finding.evidence.size() == expected[in_order[f]]);
    CHECK(finding.best == best[in_order[f]]);
    for (size_t k = 0; k < finding.evidence.size(); ++k) {
      const Evidence& e = finding.evidence[k];
      CHECK(e.tag.without_protected_bit() == finding.tag);
      CHECK(e.api == "ExAllocatePoolWithTag");
      if (k > 0) {
        const Evidence& before = finding.evidence[k - 1];
        CHECK((before.kind > e.kind || (before.kind == e.kind && before.rva < e.rva)));
      }
    }
  }
}
