// poolmon -n and !poolused logs: one fixture per layout and edge case (written for these tests, invented
// tags and numbers), the verbatim samples in ../shared/formats when present, the series ranking on a
// generated series (a leak, a burst, noise), its attribution to the Leak sample, the sparkline and the chart.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "tagwho/poolmon.hpp"
#include "tagwho/report.hpp"
#include "tagwho/scan.hpp"

using namespace tagwho;
namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(TAGWHO_SOURCE_DIR) / "tests" / "fixtures" / "poolmon";
const fs::path kFormats = fs::path(TAGWHO_SOURCE_DIR) / ".." / "shared" / "formats";

PoolSnapshot fixture(const char* name) {
  Result<PoolSnapshot> snapshot = load_pool_log((kFixtures / name).string());
  REQUIRE_MESSAGE(snapshot.ok(), name);
  return std::move(*snapshot);
}

const PoolRow* find_row(const PoolSnapshot& snapshot, const char* tag_text, PoolKind kind) {
  for (const PoolRow& row : snapshot.rows)
    if (row.tag_text == tag_text && row.kind == kind) return &row;
  return nullptr;
}

Tag tag4(const char* text) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value |= uint32_t(static_cast<unsigned char>(text[i])) << (8 * i);
  return Tag{value};
}

// " Tag  Type ..." rows in the 64-bit layout, as poolmon -n writes them.
std::string x64_row(const char* tag, const char* type, int64_t bytes, int64_t per) {
  char line[160];
  int64_t diff = bytes / per, frees = 100000, allocs = frees + diff;
  std::snprintf(line, sizeof line, " %4s %5s %18lld %18lld  %16lld %14lld     %12lld        \n", tag, type,
                (long long)allocs, (long long)frees, (long long)diff, (long long)(diff * per), (long long)per);
  return line;
}

// The generated series: Leak grows in every interval, Brst rises and falls back, the rest wobbles.
std::vector<PoolSnapshot> generated_series(size_t count) {
  std::vector<PoolSnapshot> series;
  uint32_t seed = 12345;
  auto wobble = [&](int64_t level, int64_t spread) {
    seed = seed * 1103515245u + 12345u;
    return level + int64_t((seed >> 8) % uint32_t(2 * spread)) - spread;
  };
  size_t mid = (count + 1) / 2;
  for (size_t i = 1; i <= count; ++i) {
    std::string text = "\n Tag  Type     Allocs            Frees               Diff            Bytes                 "
                       "Per Alloc\n\n";
    int64_t up = int64_t(std::min(i, mid) - 1), down = int64_t(i > mid ? i - mid : 0);
    int64_t burst = std::max<int64_t>(2 << 20, (2 << 20) + up * (6 << 20) - down * (7 << 20));
    text += x64_row("Brst", "Paged", burst, 4096);
    text += x64_row("Cc  ", "Paged", wobble(98304, 2048), 64);
    text += x64_row("FMfn", "Paged", wobble(104857600, 262144), 512);
    text += x64_row("File", "Nonp ", wobble(25165824, 131072), 384);
    text += x64_row("File", "Paged", wobble(4194304, 65536), 256);
    text += x64_row("Leak", "Nonp ", (1 << 20) + int64_t(i - 1) * 786432, 1024);
    text += x64_row("Toke", "Paged", wobble(12582912, 98304), 1200);
    PoolSnapshot snapshot = parse_pool_log(text, "logs/poolmonlog" + std::to_string(i) + ".txt");
    snapshot.time = 1700000000 + int64_t(i - 1) * 3600;
    series.push_back(std::move(snapshot));
  }
  return series;
}

const PoolSeries* find_series(const PoolAnalysis& analysis, const char* tag_text, PoolKind kind) {
  for (const PoolSeries& s : analysis.ranked)
    if (s.tag_text == tag_text && s.kind == kind) return &s;
  return nullptr;
}

}  // namespace

TEST_CASE("poolmon -n, 64-bit, with the Memory/Commit summary: tags with spaces, one tag on both pools") {
  PoolSnapshot s = fixture("x64_summary.txt");
  CHECK(s.unrecognised.empty());
  CHECK(s.summary);
  CHECK_FALSE(s.mapped_driver);
  CHECK(s.layout == PoolLogLayout::poolmon_x64);
  REQUIRE(s.rows.size() == 5);
  const PoolRow* cc = find_row(s, "Cc  ", PoolKind::paged);
  REQUIRE(cc);
  CHECK(cc->tag == tag4("Cc  "));
  CHECK(*cc->allocs == 5000);
  CHECK(*cc->frees == 4000);
  CHECK(cc->outstanding == 1000);
  CHECK(cc->bytes == 64000);
  const PoolRow* dh = find_row(s, "Dh 0", PoolKind::nonpaged);
  REQUIRE(dh);
  CHECK(dh->bytes == 25600);
  REQUIRE(find_row(s, "Fxq1", PoolKind::nonpaged));
  REQUIRE(find_row(s, "Fxq1", PoolKind::paged));
  CHECK(find_row(s, "Fxq1", PoolKind::nonpaged)->bytes == 2048000);
  CHECK(find_row(s, "Fxq1", PoolKind::paged)->bytes == 12800);
  CHECK(s.duplicates == 0);
  CHECK(find_row(s, "Wx  ", PoolKind::nonpaged)->bytes == 0);
}

TEST_CASE("poolmon -n -g, 64-bit: the Mapped_Driver column, Unknown Driver and repeated [..][..]") {
  PoolSnapshot s = fixture("x64_mapped.txt");
  CHECK(s.unrecognised.empty());
  CHECK(s.mapped_driver);
  CHECK_FALSE(s.summary);
  REQUIRE(s.rows.size() == 3);
  CHECK(s.rows[0].note == "Unknown Driver");
  CHECK(s.rows[0].bytes == 42770432);
  CHECK(s.rows[1].note == "[zq.sys - Zq objects]");
  CHECK(s.rows[2].note == "[zqa.sys - one][zqb.sys - two]");
  CHECK(s.rows[2].kind == PoolKind::paged);
}

TEST_CASE("poolmon -n, 32-bit widths, with and without Mapped_Driver, and a number wider than its column") {
  PoolSnapshot plain = fixture("x86_plain.txt");
  CHECK(plain.unrecognised.empty());
  CHECK(plain.layout == PoolLogLayout::poolmon_x86);
  REQUIRE(plain.rows.size() == 3);
  CHECK(plain.rows[0].tag_text == "Ab c");
  CHECK(plain.rows[0].outstanding == 1000);
  CHECK(find_row(plain, "Qrst", PoolKind::paged)->bytes == 1234567890);
  CHECK(find_row(plain, "Qrst", PoolKind::nonpaged)->bytes == 64);
  PoolSnapshot mapped = fixture("x86_mapped.txt");
  CHECK(mapped.unrecognised.empty());
  CHECK(mapped.mapped_driver);
  CHECK(mapped.layout == PoolLogLayout::poolmon_x86);
  REQUIRE(mapped.rows.size() == 2);
  CHECK(mapped.rows[0].tag_text == "Mno ");
  CHECK(mapped.rows[0].note == "Unknown Driver");
  CHECK(mapped.rows[1].note == "[mnp.sys - widgets]");
}

TEST_CASE("the interactive poolmon display copied to a file: ( delta ) columns are skipped") {
  PoolSnapshot s = fixture("interactive.txt");
  CHECK(s.unrecognised.empty());
  CHECK(s.layout == PoolLogLayout::poolmon_interactive);
  REQUIRE(s.rows.size() == 3);
  CHECK(*s.rows[0].allocs == 9000);
  CHECK(*s.rows[0].frees == 8990);
  CHECK(s.rows[0].outstanding == 10);
  CHECK(s.rows[0].bytes == 1280);
  CHECK(s.rows[0].note == "[kq.sys  -  one]");
  CHECK(s.rows[2].note == "Unknown Driver");
}

TEST_CASE("!poolused, older layout: glued descriptions, UNKNOWN rows, dotted tags, prompt and TOTAL lines") {
  PoolSnapshot s = fixture("poolused_old.txt");
  CHECK(s.unrecognised.empty());
  CHECK(s.layout == PoolLogLayout::poolused_old);
  REQUIRE(s.rows.size() == 8);  // one Nonp and one Paged row per tag
  const PoolRow* bq1 = find_row(s, "Bq01", PoolKind::nonpaged);
  REQUIRE(bq1);
  CHECK(bq1->outstanding == 2);
  CHECK(bq1->bytes == 640);
  CHECK_FALSE(bq1->allocs);
  CHECK(bq1->note == "UNKNOWN pooltag 'Bq01', please update pooltag.txt");
  CHECK(find_row(s, "Bq2 ", PoolKind::paged)->bytes == 384);
  CHECK(find_row(s, "Bq2 ", PoolKind::paged)->note == "Widget pool , Binary: bq.sys");
  const PoolRow* dotted = find_row(s, "b..q", PoolKind::nonpaged);
  REQUIRE(dotted);
  CHECK(dotted->tag_uncertain);
  CHECK(find_row(s, "Bq4 ", PoolKind::paged)->bytes == 40);
}

TEST_CASE("!poolused, newer layout (TAB before the description) and a block pasted without leading spaces") {
  PoolSnapshot s = fixture("poolused_new.txt");
  CHECK(s.unrecognised.empty());
  CHECK(s.layout == PoolLogLayout::poolused_new);
  REQUIRE(s.rows.size() == 6);
  CHECK(find_row(s, "Nq02", PoolKind::nonpaged)->bytes == 98304);
  CHECK(find_row(s, "Nq02", PoolKind::paged)->bytes == 4096);
  CHECK(find_row(s, "Nq02", PoolKind::paged)->note == "Nq thing , Binary: nq.sys");
  CHECK(find_row(s, "Nq 3", PoolKind::paged)->bytes == 7000);
  PoolSnapshot column0 = fixture("poolused_column0.txt");
  CHECK(column0.unrecognised.empty());
  REQUIRE(column0.rows.size() == 4);
  CHECK(find_row(column0, "Pq1 ", PoolKind::paged)->bytes == 33930272);
  CHECK(find_row(column0, "Pq2 ", PoolKind::nonpaged)->bytes == 128);
}

TEST_CASE("lines that are neither format are reported with their line numbers, never dropped") {
  PoolSnapshot s = fixture("mixed_junk.txt");
  REQUIRE(s.unrecognised.size() == 3);
  CHECK(s.unrecognised[0].line == 3);
  CHECK(s.unrecognised[0].text == "this is not a row");
  CHECK(s.unrecognised[1].line == 6);  // no leading space: the tag column is not where poolmon puts it
  CHECK(s.unrecognised[2].line == 8);  // "Sess" is no pool type of poolmon -n
  REQUIRE(s.rows.size() == 2);
  CHECK(s.rows[0].line == 5);
  CHECK(s.rows[1].line == 7);
  PoolSnapshot text = parse_pool_log("hello\r\n\r\nworld", "inline");
  CHECK(text.rows.empty());
  REQUIRE(text.unrecognised.size() == 2);
  CHECK(text.unrecognised[1].line == 3);
}

TEST_CASE("a tag and pool listed twice in one file: counted, and the later row is used") {
  std::string text = x64_row("Dup1", "Nonp ", 1000, 10) + x64_row("Dup1", "Nonp ", 2000, 10);
  PoolSnapshot s = parse_pool_log(text, "twice");
  CHECK(s.duplicates == 1);
  PoolAnalysis analysis = analyse_pool_logs({s});
  REQUIRE(analysis.ranked.size() == 1);
  CHECK(analysis.ranked[0].bytes_last == 2000);
}

TEST_CASE("every verbatim sample in ../shared/formats parses (when present)") {
  if (!fs::exists(kFormats / "poolmon_snapshot_x64_plain.txt")) {
    MESSAGE("skipped: no ../shared/formats");
    return;
  }
  // Their '#' lines are the folder's own comments, not part of the formats: the only lines left over.
  auto load = [&](const char* name) {
    Result<PoolSnapshot> s = load_pool_log((kFormats / name).string());
    REQUIRE(s.ok());
    for (const PoolLogProblem& line : s->unrecognised) CHECK_MESSAGE(line.text.rfind("#", 0) == 0, line.text);
    return std::move(*s);
  };
  PoolSnapshot plain = load("poolmon_snapshot_x64_plain.txt");
  CHECK(plain.summary);
  CHECK(plain.layout == PoolLogLayout::poolmon_x64);
  CHECK(plain.rows.size() == 8);
  CHECK(find_row(plain, "File", PoolKind::nonpaged)->bytes == 254683680);
  CHECK(find_row(plain, "File", PoolKind::paged)->bytes == 4000);
  PoolAnalysis one = analyse_pool_logs({plain});
  CHECK(one.ranked.front().tag_text == "FMfn");  // the biggest user is the first suspect
  CHECK(one.ranked.front().bytes_last == 1495080176);

  PoolSnapshot mapped = load("poolmon_snapshot_x64_with_g.txt");
  CHECK(mapped.mapped_driver);
  REQUIRE(mapped.rows.size() == 2);
  CHECK(mapped.rows[0].note == "Unknown Driver");
  CHECK(mapped.rows[1].note == "[nt!ps - Thread objects]");
  CHECK(mapped.rows[1].bytes == 13179648);

  PoolSnapshot interactive = load("poolmon_interactive_g_docs.txt");
  CHECK(interactive.rows.size() == 7);
  CHECK(find_row(interactive, "NtFB", PoolKind::paged)->bytes == 252088);
  CHECK(find_row(interactive, "IpEQ", PoolKind::nonpaged)->note == "[ipsec][ipsec.sys    -  event queue]");
  CHECK(find_row(interactive, "1MEM", PoolKind::nonpaged)->note == "Unknown Driver");

  PoolSnapshot used = load("windbg_poolused_samples.txt");
  CHECK(used.rows.size() == 2 * (8 + 5 + 7));  // two rows (Nonp, Paged) per tag line
  CHECK(find_row(used, "8042", PoolKind::nonpaged)->note == "PS/2 kb and mouse , Binary: i8042prt.sys");
  CHECK(find_row(used, "AGP ", PoolKind::paged)->bytes == 384);
  CHECK(find_row(used, "rx..", PoolKind::nonpaged)->tag_uncertain);
  CHECK(find_row(used, "Abc ", PoolKind::paged)->bytes == 33930272);
  CHECK(find_row(used, "UlWQ", PoolKind::nonpaged)->layout == PoolLogLayout::poolused_new);
  CHECK(find_row(used, "hSVD", PoolKind::paged)->layout == PoolLogLayout::poolused_old);
}

TEST_CASE("series order: natural file-name order, or mtime") {
  std::vector<PoolSnapshot> logs(3);
  logs[0].source = "a/log10.txt";
  logs[0].time = 100;
  logs[1].source = "b/log9.txt";
  logs[1].time = 300;
  logs[2].source = "c/log09b.txt";
  logs[2].time = 200;
  order_pool_logs(logs, PoolOrder::name);
  CHECK(logs[0].source == "b/log9.txt");
  CHECK(logs[1].source == "c/log09b.txt");
  CHECK(logs[2].source == "a/log10.txt");
  order_pool_logs(logs, PoolOrder::mtime);
  CHECK(logs[0].source == "a/log10.txt");
  CHECK(logs[1].source == "c/log09b.txt");
  CHECK(logs[2].source == "b/log9.txt");
}

TEST_CASE("a generated series: the steady grower ranks first as a leak, the burst is not a leak") {
  PoolAnalysis analysis = analyse_pool_logs(generated_series(12));
  REQUIRE(analysis.sources.size() == 12);
  CHECK(analysis.timed);
  REQUIRE_FALSE(analysis.ranked.empty());
  const PoolSeries& top = analysis.ranked.front();
  CHECK(top.tag_text == "Leak");
  CHECK(top.kind == PoolKind::nonpaged);
  CHECK(top.trend == PoolTrend::leak);
  CHECK(top.grew == 11);
  CHECK(top.steadiness == doctest::Approx(1.0));
  CHECK(top.growth == 11 * 786432);
  CHECK(top.growth_per_interval == doctest::Approx(786432));
  REQUIRE(top.growth_per_hour);
  CHECK(*top.growth_per_hour == doctest::Approx(786432));
  const PoolSeries* burst = find_series(analysis, "Brst", PoolKind::paged);
  REQUIRE(burst);
  CHECK(burst->trend == PoolTrend::burst);
  CHECK(burst->peak > 30 * (1 << 20));
  for (const PoolSeries& s : analysis.ranked)
    if (s.tag_text != "Leak") CHECK_MESSAGE(s.trend != PoolTrend::leak, s.tag_text);
  // the noise is flat: it wobbles by well under 5% of its level
  CHECK(find_series(analysis, "FMfn", PoolKind::paged)->trend == PoolTrend::flat);
}

TEST_CASE("trends of hand-made series") {
  auto trend = [](std::vector<int64_t> bytes) {
    PoolSeries s;
    s.bytes = std::move(bytes);
    measure_pool_series(s, {});
    return s;
  };
  CHECK(trend({100}).trend == PoolTrend::single);
  CHECK(trend({100}).score == 100);
  CHECK(trend({100, 200}).trend == PoolTrend::grows);  // two snapshots are not enough for a leak
  CHECK(trend({100, 200, 300}).trend == PoolTrend::leak);
  CHECK(trend({100, 200, 190, 300, 400}).trend == PoolTrend::leak);  // a dip does not clear a leak
  CHECK(trend({100, 500, 900, 150}).trend == PoolTrend::burst);
  CHECK(trend({100, 100, 100}).trend == PoolTrend::flat);
  CHECK(trend({1000, 800, 600}).trend == PoolTrend::shrinks);
  CHECK(trend({100, 400, 100, 400, 100, 200}).trend == PoolTrend::burst);
  PoolSeries grows = trend({100, 300, 300, 300, 300});
  CHECK(grows.trend == PoolTrend::grows);  // one step up, then nothing: not steady
  CHECK(grows.steadiness == doctest::Approx(0.25));
  CHECK(grows.score == doctest::Approx(50));
  CHECK_FALSE(grows.growth_per_hour);
}

TEST_CASE("the top suspect of the generated series is attributed to the Leak sample with its call site") {
  PoolAnalysis analysis = analyse_pool_logs(generated_series(8));
  REQUIRE_FALSE(analysis.ranked.empty());
  Tag tag = analysis.ranked.front().tag;
  REQUIRE(tag == tag4("Leak"));
  auto scanner = Scanner::create(ScanRequest{{tag}, false});
  REQUIRE(scanner.ok());
  std::vector<WalkProblem> problems;
  std::vector<InputFile> inputs = walk_inputs({(fs::path(TAGWHO_SOURCE_DIR) / "samples" / "bin").string()}, problems);
  CHECK(problems.empty());
  std::vector<FileResult> results = scan_files(*scanner, inputs, 2);
  std::vector<const DriverReport*> reports;
  for (const FileResult& result : results)
    if (!result.not_pe) reports.push_back(&result.report);
  std::vector<SearchRow> rows = rank_search(reports, {tag});
  REQUIRE_FALSE(rows.empty());
  CHECK(fs::path(rows.front().report->path).filename().string().rfind("leak-", 0) == 0);
  CHECK(rows.front().finding->best == Confidence::call);
  CHECK(rows.front().finding->evidence.front().api == "ExAllocatePoolWithTag");

  PoolSuspect suspect{&analysis.ranked.front(), 1, rows, true};
  std::ostringstream json;
  write_pool_json(json, {suspect}, nullptr);
  std::string line = json.str();
  CHECK(line.rfind("{\"rank\":1,\"tag\":\"Leak\",\"value\":\"0x6b61654c\",\"tag_text\":\"Leak\",\"type\":\"Nonp\","
                   "\"trend\":\"leak\",",
                   0) == 0);
  // each owner is exactly a `tagwho --json` search line
  std::ostringstream search;
  write_search_json(search, {rows.front()}, nullptr);
  std::string first_owner = search.str();
  first_owner.pop_back();
  CHECK(line.find("\"owners\":[" + first_owner) != std::string::npos);
  std::ostringstream table;
  write_pool_table(table, {suspect}, PoolReportOptions{});
  CHECK(table.str().rfind("1. Leak  Nonp   leak   1.00 MB -> 6.25 MB  +5.25 MB  (grew in 7 of 7 intervals", 0) == 0);
  CHECK(table.str().find("\n    Leak  call  ") != std::string::npos);
  CHECK(table.str().find("call  ExAllocatePoolWithTag at 0x") != std::string::npos);
}

TEST_CASE("sparkline and byte formatting") {
  CHECK(sparkline({0, 7, 14}) == "▁▅█");
  CHECK(sparkline({5, 5}) == "▄▄");
  CHECK(sparkline({}).empty());
  CHECK(format_bytes(512) == "512 B");
  CHECK(format_bytes(1536) == "1.50 KB");
  CHECK(format_bytes(12 << 20) == "12.0 MB");
  CHECK(format_bytes(-2048, true) == "-2.00 KB");
  CHECK(format_bytes(2048, true) == "+2.00 KB");
  CHECK(format_bytes(0, true) == "0 B");
}

TEST_CASE("the chart: plain SVG with axes in MB, a legend, and one line per suspect") {
  PoolAnalysis analysis = analyse_pool_logs(generated_series(6));
  std::ostringstream svg;
  write_pool_svg(svg, analysis, PoolPlotOptions{3, ""});
  std::string text = svg.str();
  CHECK(text.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
  CHECK(text.find("</svg>\n") == text.size() - 7);
  CHECK(text.find(" MB</text>") != std::string::npos);
  CHECK(text.find("bytes in use (MB)") != std::string::npos);
  CHECK(text.find("1. Leak Nonp  leak, +") != std::string::npos);
  CHECK(std::count(text.begin(), text.end(), '\n') > 20);
  size_t lines = 0;
  for (size_t at = text.find("<polyline"); at != std::string::npos; at = text.find("<polyline", at + 1)) ++lines;
  CHECK(lines == 3);
  CHECK(text.find("poolmonlog6.txt (+5.0 h)") != std::string::npos);
  // tag text is escaped
  PoolSeries odd;
  odd.tag_text = "<&\">";
  odd.bytes = {10};
  PoolAnalysis one;
  one.sources = {"x"};
  one.times = {std::nullopt};
  measure_pool_series(odd, {});
  one.ranked.push_back(odd);
  std::ostringstream escaped;
  write_pool_svg(escaped, one, PoolPlotOptions{});
  CHECK(escaped.str().find("&lt;&amp;&quot;&gt;") != std::string::npos);
}
