#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <tuple>

#include "index/sqlite.hpp"
#include "index/store.hpp"
#include "index_downgrade.hpp"
#include "tagwho/index.hpp"
#include "tagwho/report.hpp"
#include "tagwho/scan.hpp"

using namespace tagwho;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char pattern[] = "/tmp/tagwho-index-XXXXXX";
    path = mkdtemp(pattern);
  }
  ~TempDir() {
    std::error_code error;
    fs::remove_all(path, error);
  }
};

fs::path samples() { return fs::path(TAGWHO_SOURCE_DIR) / "samples" / "bin"; }

std::string search_json(const std::vector<const DriverReport*>& reports, const std::vector<Tag>& tags) {
  std::ostringstream out;
  write_search_json(out, rank_search(reports, tags), nullptr);
  return out.str();
}

}  // namespace

TEST_CASE("content_hash is XXH64") {
  CHECK(content_hash("", 0) == 0xEF46DB3751D8E999ull);
  CHECK(content_hash("a", 1) == 0xD24EC4F1A98C6E5Bull);
  CHECK(content_hash("abc", 3) == 0x44BC2CF5AD770999ull);
  std::string long_text(1000, 'x');
  CHECK(content_hash(long_text.data(), long_text.size()) != content_hash(long_text.data(), long_text.size() - 1));
}

TEST_CASE("an index answers every sample tag as a scan does") {
  TempDir dir;
  fs::copy(samples(), dir.path / "tree");
  fs::copy_file(samples() / "leak-clang-x64.sys", dir.path / "tree" / "again.sys");
  auto index = Index::open((dir.path / "i.db").string(), true);
  REQUIRE(index.ok());
  auto counts = index->build({(dir.path / "tree").string()}, IndexBuildOptions{2, "unit", {}});
  REQUIRE(counts.ok());
  CHECK(counts->files == 16);
  CHECK(counts->analysed == 15);
  CHECK(counts->duplicates == 1);
  for (const char* text : {"Leak", "PuCx", "PuLn", "PuTm", "Zzzz", "Ddk "}) {
    std::vector<Tag> tags{*Tag::parse(text)};
    auto answer = index->search(tags, {}, nullptr, 2);
    REQUIRE(answer.ok());
    CHECK(answer->used);
    std::vector<const DriverReport*> from_index;
    for (const DriverReport& report : answer->reports) from_index.push_back(&report);
    auto scanner = Scanner::create(ScanRequest{tags, false});
    REQUIRE(scanner.ok());
    std::vector<WalkProblem> problems;
    std::vector<FileResult> results = scan_files(*scanner, walk_inputs({(dir.path / "tree").string()}, problems), 2);
    std::vector<const DriverReport*> scanned;
    for (const FileResult& result : results)
      if (!result.not_pe) scanned.push_back(&result.report);
    CHECK_MESSAGE(search_json(from_index, tags) == search_json(scanned, tags), text);
  }
  auto stats = index->stats();
  REQUIRE(stats.ok());
  CHECK(stats->contents == 15);
  CHECK(stats->hosts.size() == 1);
  CHECK(stats->hosts[0].name == "unit");
}

TEST_CASE("an index stored one tag's literal evidence at a time is the same index") {
  TempDir dir;
  fs::copy(samples(), dir.path / "tree");
  const std::string tree = (dir.path / "tree").string();
  IndexBuildOptions whole{2, "unit", {}};
  IndexBuildOptions by_tag = whole;
  by_tag.literal_group_hits = 1;  // every tag with hits is a group of its own
  auto a = Index::open((dir.path / "whole.db").string(), true);
  auto b = Index::open((dir.path / "by_tag.db").string(), true);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE(a->build({tree}, whole).ok());
  auto counts = b->build({tree}, by_tag);
  REQUIRE(counts.ok());
  CHECK(counts->literal_rescans == counts->analysed);
  // Every tag of every sample: the literal evidence (data, code, raw) is what differs between the two ways.
  std::vector<std::string> texts = {"This", "Zzzz"};
  for (const auto& entry : fs::directory_iterator(tree)) {
    auto scanner = Scanner::create(ScanRequest{{}, true});
    REQUIRE(scanner.ok());
    std::vector<WalkProblem> problems;
    for (const FileResult& result : scan_files(*scanner, walk_inputs({entry.path().string()}, problems), 1))
      for (const Finding& finding : result.report.findings) texts.push_back(finding.tag.display());
  }
  std::sort(texts.begin(), texts.end());
  texts.erase(std::unique(texts.begin(), texts.end()), texts.end());
  REQUIRE(texts.size() >= 8);
  size_t literal = 0;
  for (const std::string& text : texts) {
    std::vector<Tag> tags{*Tag::parse(text)};
    auto from_a = a->search(tags, {}, nullptr, 1);
    auto from_b = b->search(tags, {}, nullptr, 1);
    REQUIRE(from_a.ok());
    REQUIRE(from_b.ok());
    std::vector<const DriverReport*> ra, rb;
    for (const DriverReport& report : from_a->reports) ra.push_back(&report);
    for (const DriverReport& report : from_b->reports) rb.push_back(&report);
    for (const DriverReport* report : rb)
      for (const Finding& finding : report->findings)
        for (const Evidence& e : finding.evidence)
          literal += e.kind == Confidence::code || e.kind == Confidence::data || e.kind == Confidence::raw;
    CHECK_MESSAGE(search_json(ra, tags) == search_json(rb, tags), text);
  }
  CHECK(literal > 10);
}

TEST_CASE("a proven tag that does not read as text is searched at query time, with the same answer") {
  TempDir dir;
  fs::create_directories(dir.path / "tree");
  fs::copy_file(samples() / "leak-clang-x64.sys", dir.path / "tree" / "leak.sys");
  // The same driver allocating with code bytes for a tag: the immediate "Leak" becomes 01 02 90 10.
  std::string bytes;
  {
    std::ifstream in(samples() / "leak-clang-x64.sys", std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const size_t at = bytes.find("Leak");
  REQUIRE(at != std::string::npos);
  REQUIRE(bytes.find("Leak", at + 1) == std::string::npos);
  bytes.replace(at, 4, std::string("\x01\x02\x90\x10", 4));
  std::ofstream(dir.path / "tree" / "odd.sys", std::ios::binary) << bytes;
  const Tag odd{0x10900201u};
  const std::string tree = (dir.path / "tree").string();

  auto index = Index::open((dir.path / "i.db").string(), true);
  REQUIRE(index.ok());
  auto counts = index->build({tree}, IndexBuildOptions{1, "", {}});  // this host's: its files are searched
  REQUIRE(counts.ok());
  std::set<uint32_t> proven;
  {
    auto scanner = Scanner::create(ScanRequest{{}, true});
    REQUIRE(scanner.ok());
    std::vector<WalkProblem> problems;
    for (const FileResult& result : scan_files(*scanner, walk_inputs({tree}, problems), 1))
      for (const Finding& finding : result.report.findings) proven.insert(finding.tag.value);
  }
  REQUIRE(proven.count(odd.value) == 1);
  REQUIRE(proven.count(Tag::parse("Leak")->value) == 1);
  CHECK(counts->literal_tags == proven.size() - 1);  // every proven tag but the odd one
  // "This" (the DOS stub's text) is proven nowhere: outside every literal set, its bytes are searched at
  // query time and classified against the stored call evidence, in the whole index and under a PATH.
  for (Tag tag : {odd, *Tag::parse("Leak"), *Tag::parse("This")}) {
    std::vector<Tag> tags{tag};
    auto answer = index->search(tags, {}, nullptr, 1);
    REQUIRE(answer.ok());
    std::vector<const DriverReport*> from_index;
    for (const DriverReport& report : answer->reports) from_index.push_back(&report);
    auto under_tree = index->search(tags, {tree}, nullptr, 2);
    REQUIRE(under_tree.ok());
    CHECK(under_tree->searched == (tag == *Tag::parse("Leak") ? 0u : 2u));  // both files, each once
    std::vector<const DriverReport*> from_tree;
    for (const DriverReport& report : under_tree->reports) from_tree.push_back(&report);
    auto scanner = Scanner::create(ScanRequest{tags, false});
    REQUIRE(scanner.ok());
    std::vector<WalkProblem> problems;
    std::vector<FileResult> results = scan_files(*scanner, walk_inputs({tree}, problems), 1);
    std::vector<const DriverReport*> scanned;
    for (const FileResult& result : results)
      if (!result.not_pe) scanned.push_back(&result.report);
    CHECK(!search_json(scanned, tags).empty());
    CHECK_MESSAGE(search_json(from_index, tags) == search_json(scanned, tags), tag.display());
    CHECK_MESSAGE(search_json(from_tree, tags) == search_json(scanned, tags), tag.display());
  }
}

TEST_CASE("update counts what changed; files that are not indexes are refused") {
  TempDir dir;
  fs::create_directories(dir.path / "tree");
  fs::copy_file(samples() / "leak-clang-x64.sys", dir.path / "tree" / "a.sys");
  fs::copy_file(samples() / "quiet-clang-x64.sys", dir.path / "tree" / "b.sys");
  std::string db = (dir.path / "i.db").string();
  {
    auto index = Index::open(db, true);
    REQUIRE(index.ok());
    REQUIRE(index->build({(dir.path / "tree").string()}, IndexBuildOptions{1, "", {}}).ok());
    fs::remove(dir.path / "tree" / "b.sys");
    fs::copy_file(samples() / "leak-clang-x64.sys", dir.path / "tree" / "c.sys");
    auto counts = index->update(IndexBuildOptions{1, "", {}});
    REQUIRE(counts.ok());
    CHECK(counts->analysed == 0);
    CHECK(counts->reused == 2);
    CHECK(counts->added == 1);
    CHECK(counts->removed == 1);
  }
  std::string text = (dir.path / "text.db").string();
  std::ofstream(text) << "not a database\n";
  auto refused = Index::open(text, true);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().find("not a tagwho index") != std::string::npos);
  std::ifstream in(text);
  std::string line;
  std::getline(in, line);
  CHECK(line == "not a database");
  CHECK_FALSE(Index::open((dir.path / "missing.db").string(), false).ok());
  CHECK_FALSE(fs::exists(dir.path / "missing.db"));
}

TEST_CASE("merge keeps each file's host") {
  TempDir dir;
  fs::create_directories(dir.path / "tree");
  fs::copy_file(samples() / "leak-clang-x64.sys", dir.path / "tree" / "a.sys");
  for (const char* host : {"one", "two"}) {
    auto index = Index::open((dir.path / (std::string(host) + ".db")).string(), true);
    REQUIRE(index.ok());
    REQUIRE(index->build({(dir.path / "tree").string()}, IndexBuildOptions{1, host, {}}).ok());
  }
  auto fleet = Index::open((dir.path / "fleet.db").string(), true);
  REQUIRE(fleet.ok());
  auto merged = fleet->merge_from({(dir.path / "one.db").string(), (dir.path / "two.db").string()});
  REQUIRE(merged.ok());
  CHECK(*merged == 2);
  CHECK(fleet->host_count() == 2);
  auto answer = fleet->search({*Tag::parse("Leak")}, {}, nullptr, 1);
  REQUIRE(answer.ok());
  REQUIRE(answer->reports.size() == 2);
  CHECK(answer->reports[0].path.rfind("one:", 0) == 0);
  CHECK(answer->reports[1].path.rfind("two:", 0) == 0);
}

namespace {

// Every driver of an index as `tagwho index export --format jsonl` lists it.
std::string export_jsonl(Index& index) {
  std::ostringstream out;
  auto visited = index.for_each_driver([&](const std::string&, const DriverReport& report) { write_driver_json(out, report); });
  REQUIRE(visited.ok());
  return out.str();
}

// (tag, content, evidence blob) of every finding, in key order.
std::vector<std::tuple<int64_t, int64_t, std::string>> stored_findings(const fs::path& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  std::vector<std::tuple<int64_t, int64_t, std::string>> rows;
  {
    sql::Statement s(db, "SELECT tag, content, evidence FROM findings ORDER BY tag, content");
    while (s.step()) rows.emplace_back(s.i64(0), s.i64(1), s.blob(2));
  }
  sqlite3_close_v2(db);
  return rows;
}

// The SQL that made the findings table and its indexes, as sqlite_master holds it.
std::vector<std::string> findings_layout(const fs::path& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  std::vector<std::string> layout;
  {
    sql::Statement s(db, "SELECT type || ' ' || name || ': ' || sql FROM sqlite_master WHERE tbl_name = 'findings'"
                         " AND sql IS NOT NULL ORDER BY type, name");
    while (s.step()) layout.push_back(s.text(0));
  }
  sqlite3_close_v2(db);
  return layout;
}

int64_t scalar_of(const fs::path& path, const char* query) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  const int64_t value = sql::scalar(db, query);
  sqlite3_close_v2(db);
  return value;
}

// An index of the samples, as this tagwho builds it: its path, export and stored findings.
struct SampleIndex {
  fs::path path;
  std::string listing;
  std::vector<std::tuple<int64_t, int64_t, std::string>> blobs;
};

SampleIndex build_sample_index(const fs::path& path) {
  SampleIndex built{path, {}, {}};
  {
    auto index = Index::open(path.string(), true);
    REQUIRE(index.ok());
    REQUIRE(index->build({samples().string()}, IndexBuildOptions{2, "unit", {}}).ok());
    built.listing = export_jsonl(*index);
  }
  built.blobs = stored_findings(path);
  REQUIRE(built.blobs.size() > 20);
  return built;
}

}  // namespace

TEST_CASE("an index of schema 4 (evidence texts written whole) is upgraded in place to the same answers") {
  TempDir dir;
  const fs::path old = dir.path / "old.db";
  const auto [built, listing, blobs] = build_sample_index(dir.path / "i.db");
  fs::copy_file(built, old);
  test::downgrade_index_to_schema4(old.string());
  REQUIRE(scalar_of(old, "PRAGMA user_version") == 4);
  // Schema 4's blobs are larger: every section, API name and detail whole.
  const int64_t whole = scalar_of(old, "SELECT sum(length(evidence)) FROM findings");
  const int64_t once = scalar_of(built, "SELECT sum(length(evidence)) FROM findings");
  CHECK(whole > once);
  REQUIRE(stored_findings(old) != blobs);
  {
    auto upgraded = Index::open(old.string(), false);
    REQUIRE(upgraded.ok());
    CHECK(export_jsonl(*upgraded) == listing);
  }
  CHECK(scalar_of(old, "PRAGMA user_version") == kIndexSchemaVersion);
  CHECK(stored_findings(old) == blobs);  // written again as a build writes them
}

TEST_CASE("evidence blobs: each text written once, immediate details by their address, damage refused") {
  using index_detail::decode_evidence;
  using index_detail::encode_evidence;
  const Tag tag = *Tag::parse("Leak");
  std::vector<Evidence> items;
  const auto item = [&](Confidence kind, uint32_t rva, std::string section, std::string api, std::string detail) {
    Evidence e;
    e.tag = tag;
    e.kind = kind;
    e.rva = rva;
    e.section = std::move(section);
    e.api = std::move(api);
    e.detail = std::move(detail);
    if (kind == Confidence::call) {
      e.form = CallForm::iat;
      e.tag_rva = rva - 6;
    } else {
      e.file_offset = rva - 0xc00;
    }
    items.push_back(e);
  };
  item(Confidence::call, 0x1010, ".text", "ExAllocatePoolWithTag", "");
  item(Confidence::call, 0x1090, ".text", "ExAllocatePoolWithTag", "one of 2 tags");
  item(Confidence::call, 0x1110, "PAGE", "ExFreePoolWithTag", "");
  item(Confidence::code, 0x2001, ".text", "", "immediate of mov at 0x2000");
  item(Confidence::code, 0x3003, ".text", "", "immediate of push at 0x3002");
  item(Confidence::code, 0x4005, ".text", "", "immediate of mov at 0x4002");
  // Details that read like an immediate's but are not hex() of an address at or below rva: kept whole.
  item(Confidence::code, 0x5000, ".text", "", "immediate of mov at 0x5001");
  item(Confidence::code, 0x6000, ".text", "", "immediate of mov at 0x05ff0");
  item(Confidence::code, 0x7000, ".text", "", "immediate of mov at 0x6FF0");
  item(Confidence::code, 0x8000, ".text", "", "immediate of  at 0x7ff0");
  item(Confidence::code, 0x9000, ".text", "", "immediate of mov at 0x");
  item(Confidence::raw, 0xa000, ".text", "", "in code, not an immediate operand");
  item(Confidence::raw, 0xb000, ".text", "", "in code, not an immediate operand");
  item(Confidence::data, 0xc000, ".rdata", "", "in read-only data");
  const std::string once = encode_evidence(items);
  const std::string whole = encode_evidence(items, false);
  CHECK(once.size() < whole.size() * 3 / 4);
  const auto same = [&](const std::vector<Evidence>& decoded) {
    REQUIRE(decoded.size() == items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      CAPTURE(i);
      CHECK(decoded[i].kind == items[i].kind);
      CHECK(decoded[i].rva == items[i].rva);
      CHECK(decoded[i].section == items[i].section);
      CHECK(decoded[i].api == items[i].api);
      CHECK(decoded[i].detail == items[i].detail);
      CHECK(decoded[i].tag_rva == items[i].tag_rva);
      CHECK(decoded[i].file_offset == items[i].file_offset);
    }
  };
  same(decode_evidence(once, tag));
  same(decode_evidence(whole, tag));  // schema 4's blobs still read
  // A text's number past the texts so far, or a ref flag without its field: damaged, refused.
  const auto refused = [&](std::string blob) {
    CHECK_THROWS_WITH_AS(decode_evidence(blob, tag), doctest::Contains("damaged tagwho index"), sql::Failure);
  };
  // kind code, no flags, more: has section | section ref; rva 1; text number 0 (no text yet).
  refused(std::string("\x02\x00\x18\x01\x00", 5));
  // more: section ref without has section.
  refused(std::string("\x02\x00\x10\x01", 4));
  // more: has detail | detail immediate, text "mov", below: 2 > rva 1.
  refused(std::string("\x02\x00\x82\x01\x03mov\x02", 9));
  // A 60,000-byte detail, then 100,000 items naming it (6 GB of text from 560 KB): refused.
  std::string bomb = std::string("\x02\x00\x02\x01", 4);
  bomb += "\xe0\xd4\x03" + std::string(60000, 'x');  // varint 60,000
  for (int i = 0; i < 100000; ++i) bomb += std::string("\x02\x00\x42\x01\x00", 5);
  refused(bomb);
}

TEST_CASE("an index of schema 3 (findings keyed by tag) is upgraded in place to the same answers") {
  TempDir dir;
  const fs::path old = dir.path / "old.db";
  const auto [built, listing, blobs] = build_sample_index(dir.path / "i.db");
  const std::vector<std::string> layout = findings_layout(built);
  REQUIRE(layout.size() == 2);  // the table and findings_tag (a WITHOUT ROWID key is the table itself)
  CHECK(layout[0].find("findings_tag") != std::string::npos);
  CHECK(layout[1].find("PRIMARY KEY(content, tag)") != std::string::npos);
  fs::copy_file(built, old);
  test::downgrade_index_to_schema3(old.string());
  REQUIRE(scalar_of(old, "PRAGMA user_version") == 3);
  REQUIRE(findings_layout(old) != layout);
  {
    auto upgraded = Index::open(old.string(), false);
    REQUIRE(upgraded.ok());
    CHECK(export_jsonl(*upgraded) == listing);
    auto answer = upgraded->search({*Tag::parse("Leak")}, {}, nullptr, 2);
    REQUIRE(answer.ok());
    CHECK(answer->used);
    CHECK_FALSE(answer->reports.empty());
  }
  CHECK(scalar_of(old, "PRAGMA user_version") == kIndexSchemaVersion);
  CHECK(findings_layout(old) == layout);
  CHECK(scalar_of(old, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'findings_v%'") == 0);
  CHECK(stored_findings(old) == blobs);
}

TEST_CASE("an index of schema 2 (an evidence row per item) is upgraded in place to the same answers") {
  TempDir dir;
  const fs::path old = dir.path / "old.db";
  const auto [built, listing, blobs] = build_sample_index(dir.path / "i.db");
  fs::copy_file(built, old);
  test::downgrade_index_to_schema2(old.string());
  REQUIRE(scalar_of(old, "PRAGMA user_version") == 2);
  CHECK(scalar_of(old, "SELECT count(*) FROM evidence") > static_cast<int64_t>(blobs.size()));

  // Read-only, an old index is refused; with write access it is upgraded once, in place.
  fs::permissions(old, fs::perms::owner_write, fs::perm_options::remove);
  if (access(old.c_str(), W_OK) != 0) {  // (root writes anyway)
    auto refused = Index::open(old.string(), false);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().find("older than this tagwho's") != std::string::npos);
  }
  fs::permissions(old, fs::perms::owner_write, fs::perm_options::add);
  {
    auto upgraded = Index::open(old.string(), false);
    REQUIRE(upgraded.ok());
    CHECK(export_jsonl(*upgraded) == listing);
  }
  CHECK(scalar_of(old, "PRAGMA user_version") == kIndexSchemaVersion);
  CHECK(scalar_of(old, "SELECT count(*) FROM sqlite_master WHERE name = 'evidence'") == 0);
  CHECK(findings_layout(old) == findings_layout(built));
  CHECK(stored_findings(old) == blobs);  // the same blobs a build stores

  // A damaged blob is an error of the answer that reads it, never a crash.
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(old.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
    sql::exec(db, "UPDATE findings SET evidence = x'04ff' WHERE tag_text = 'Leak'");
    sqlite3_close_v2(db);
  }
  auto damaged = Index::open(old.string(), false);
  REQUIRE(damaged.ok());
  auto answer = damaged->search({*Tag::parse("Leak")}, {}, nullptr, 2);
  REQUIRE_FALSE(answer.ok());
  CHECK(answer.error().find("damaged tagwho index") != std::string::npos);
}
