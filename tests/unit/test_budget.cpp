// Per-file limits (core/budget.hpp): what stops an analysis, what does not, and that a stop leaves the
// thread's budget as it was.
#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <thread>

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
