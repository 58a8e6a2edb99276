// The pooltag.txt reader, lookup, join and writer: one fixture per edge case of the format (written for
// these tests, with invented tags), the real file when ../shared/tagdb/pooltag.txt is present, and the
// write/read round trip on the samples and the generated corpus.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <unistd.h>

#include "tagwho/scan.hpp"
#include "tagwho/tagdb.hpp"

using namespace tagwho;
namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(TAGWHO_SOURCE_DIR) / "tests" / "fixtures" / "tagdb";

TagdbFile fixture(const char* name) {
  Result<TagdbFile> file = load_tagdb_file((kFixtures / name).string());
  REQUIRE_MESSAGE(file.ok(), name);
  return std::move(*file);
}

Tagdb database(std::initializer_list<const char*> names) {
  Tagdb tagdb;
  for (const char* name : names) tagdb.add(fixture(name));
  return tagdb;
}

Tag tag(const char* text) { return *Tag::parse(text); }

std::vector<std::string> patterns(const TagdbFile& file) {
  std::vector<std::string> out;
  for (const TagdbEntry& entry : file.entries) out.push_back(entry.pattern);
  return out;
}

// "pattern|binary" of each entry a lookup returns, in order.
std::vector<std::string> found(const Tagdb& tagdb, const char* text) {
  std::vector<std::string> out;
  for (const TagdbEntry* entry : tagdb.lookup(tag(text))) out.push_back(entry->pattern + "|" + entry->binary);
  return out;
}

using Pairs = std::set<std::pair<std::string, std::string>>;  // (tag, file name)

// What the scan proved: (tag, file name) for each finding with call or wrapper evidence.
Pairs proven_pairs(const std::vector<FileResult>& results) {
  Pairs pairs;
  for (const FileResult& result : results)
    for (const Finding& finding : result.report.findings)
      if (finding.best >= Confidence::wrapper)
        pairs.insert({finding.tag.display(), fs::path(result.report.path).filename().string()});
  return pairs;
}

// Writes the results in pooltag format, parses the text back, and returns its (pattern, binary) pairs.
Pairs written_and_read_back(const std::vector<FileResult>& results, TagdbFile& parsed) {
  std::string text = pooltag_header();
  for (const FileResult& result : results) {
    std::vector<Tag> skipped;
    text += pooltag_lines(result.report, &skipped);
    CHECK_MESSAGE(skipped.empty(), result.report.path);
  }
  parsed = parse_tagdb(text, "written");
  Pairs pairs;
  for (const TagdbEntry& entry : parsed.entries) pairs.insert({entry.pattern, entry.binary});
  return pairs;
}

std::vector<FileResult> scan_driver_mode(const std::vector<std::string>& paths) {
  Scanner scanner = std::move(*Scanner::create(ScanRequest{{}, true}));
  std::vector<WalkProblem> problems;
  std::vector<InputFile> inputs = walk_inputs(paths, problems);
  REQUIRE(problems.empty());
  std::vector<FileResult> results = scan_files(scanner, inputs, 2);
  std::erase_if(results, [](const FileResult& result) { return result.not_pe; });
  return results;
}

DriverReport report_at(const char* path) {
  DriverReport report;
  report.path = path;
  return report;
}

Finding finding_of(const char* text, Confidence best, std::vector<Evidence> evidence = {}) {
  Finding finding;
  finding.tag = tag(text);
  finding.best = best;
  finding.evidence = std::move(evidence);
  return finding;
}

void check_round_trip(const std::vector<FileResult>& results) {
  Pairs proven = proven_pairs(results);
  REQUIRE_FALSE(proven.empty());
  TagdbFile parsed;
  Pairs read_back = written_and_read_back(results, parsed);
  CHECK(read_back == proven);
  CHECK(parsed.stats.free_text == 0);
  CHECK(parsed.stats.wildcards == 0);
  // And each written line names its own file, so the join sees it as agreeing with the scan.
  Tagdb tagdb;
  tagdb.add(parsed);
  for (const FileResult& result : results)
    for (const Finding& finding : result.report.findings)
      if (finding.best >= Confidence::wrapper) CHECK(join_finding(tagdb, finding, result.report.path).names_file);
}

}  // namespace

TEST_CASE("rem and // lines are comments, 'rem' must be a word, so a tag starting with Rem is an entry") {
  TagdbFile file = fixture("comments.txt");
  CHECK(file.stats.comments == 9);
  CHECK(file.stats.blank == 1);
  CHECK(file.stats.free_text == 0);
  CHECK(patterns(file) == std::vector<std::string>{"Remq", "Qux1", "Qux2"});
  CHECK(file.entries[1].binary == "qux.sys");
  CHECK(file.entries[1].description == "an entry between comments");
  CHECK(file.entries[1].line == 10);
}

TEST_CASE("short tags are padded with spaces, spaces inside a tag are part of it") {
  TagdbFile file = fixture("padded.txt");
  CHECK(file.stats.free_text == 0);
  CHECK(patterns(file) == std::vector<std::string>{"Qb  ", "Qbc ", "Qcd ", "Zh 0", "Zh 1", "Kq  ", "Wide"});
  CHECK(file.entries[2].binary == "qcd.sys");
  Tagdb tagdb;
  tagdb.add(file);
  CHECK(found(tagdb, "Qb") == std::vector<std::string>{"Qb  |qb.sys"});
  CHECK(found(tagdb, "Qb  ") == std::vector<std::string>{"Qb  |qb.sys"});
  CHECK(found(tagdb, "Zh 1") == std::vector<std::string>{"Zh 1|zh.sys"});
  CHECK(found(tagdb, "Zh").empty());  // "Zh  " is another tag
  CHECK(found(tagdb, "Qbcd").empty());
  CHECK(found(tagdb, "Wide") == std::vector<std::string>{"Wide|wide.sys"});
}

TEST_CASE("wildcards: ? is one byte, * any run, the most specific entry wins") {
  Tagdb tagdb = database({"wildcards.txt"});
  CHECK(tagdb.files()[0].stats.wildcards == 6);
  CHECK(found(tagdb, "Yqab") == std::vector<std::string>{"Yqab|yqab.sys"});
  CHECK(found(tagdb, "Yqaz") == std::vector<std::string>{"Yqa?|yqa.sys"});
  CHECK(found(tagdb, "Yq12") == std::vector<std::string>{"Yq??|yq.sys"});
  CHECK(found(tagdb, "Yq") == std::vector<std::string>{"Yq??|yq.sys"});  // "Yq  ": ? matches a space too
  CHECK(found(tagdb, "Vb") == std::vector<std::string>{"Vb*|vb.sys"});
  CHECK(found(tagdb, "Vbzz") == std::vector<std::string>{"Vb*|vb.sys"});
  CHECK(found(tagdb, "Vbcd") == std::vector<std::string>{"Vbc?|vbc.sys"});
  CHECK(found(tagdb, "Vx9z") == std::vector<std::string>{"Vx?z|vx.sys"});
  CHECK(found(tagdb, "Vx9y").empty());
  CHECK(found(tagdb, "xOop") == std::vector<std::string>{"?Oop|oop.sys"});
  CHECK(found(tagdb, "yq12").empty());  // case-sensitive, wildcards too
  CHECK(tagdb.all_matches(tag("Yqab")).size() == 3);
  CHECK(tagdb.all_matches(tag("Yqab")).front()->pattern == "Yqab");
}

TEST_CASE("duplicates are all kept, tags differing only by case are different tags") {
  Tagdb tagdb = database({"duplicates.txt"});
  CHECK(tagdb.files()[0].stats.duplicates == 2);
  CHECK(found(tagdb, "Dupe") == std::vector<std::string>{"Dupe|first.sys", "Dupe|second.sys"});
  CHECK(found(tagdb, "Dupx") == std::vector<std::string>{"Dup?|fam.sys", "Dup?|fam2.sys"});
  CHECK(found(tagdb, "Moxy") == std::vector<std::string>{"Moxy|upper.sys"});
  CHECK(found(tagdb, "moxy") == std::vector<std::string>{"moxy|lower.sys"});
  CHECK(found(tagdb, "MOXY") == std::vector<std::string>{"MOXY|caps.sys"});
  CHECK(found(tagdb, "mOXY").empty());
}

TEST_CASE("later files win ties between equally specific entries, more specific entries still win") {
  Tagdb tagdb = database({"duplicates.txt", "wildcards.txt", "later.txt"});
  CHECK(found(tagdb, "Dupe") == std::vector<std::string>{"Dupe|later.sys"});
  CHECK(found(tagdb, "Yq12") == std::vector<std::string>{"Yq??|yqlater.sys"});
  CHECK(found(tagdb, "Yqab") == std::vector<std::string>{"Yqab|yqab.sys"});  // exact beats the later family
  Tagdb reversed = database({"later.txt", "duplicates.txt"});
  CHECK(found(reversed, "Dupe") == std::vector<std::string>{"Dupe|first.sys", "Dupe|second.sys"});
}

TEST_CASE("several binaries in one field, module!function, <unknown> and static libraries") {
  TagdbFile file = fixture("binaries.txt");
  REQUIRE(file.entries.size() == 9);
  const auto& e = file.entries;
  CHECK(e[0].modules() == std::vector<std::string>{"alpha.sys", "beta.sys"});
  CHECK(e[0].names_file("/x/alpha.sys"));
  CHECK(e[0].names_file("/x/BETA.SYS"));
  CHECK_FALSE(e[0].names_file("/x/gamma.sys"));
  CHECK(e[1].binary == "nt!qstore or qboost.sys");
  CHECK(e[1].modules() == std::vector<std::string>{"nt", "qboost.sys"});
  CHECK(e[1].names_file("/w/ntoskrnl.exe"));
  CHECK(e[1].names_file("/w/ntkrnlmp.exe"));
  CHECK(e[1].names_file("qboost.sys"));
  CHECK(e[2].modules().empty());
  CHECK_FALSE(e[2].names_file("unknown.sys"));
  CHECK(e[3].modules() == std::vector<std::string>{"qwin32k"});
  CHECK(e[3].names_file("qwin32k.sys"));
  CHECK_FALSE(e[4].names_file("qstatic.sys"));  // a .lib is linked into others, never a scanned file
  CHECK(e[5].names_file("qvideo.sys"));
  CHECK(e[6].modules() == std::vector<std::string>{"gamma.sys", "delta.sys"});
  CHECK(e[7].names_file("mixed.sys"));
  CHECK(e[8].names_file("ntoskrnl.exe"));
  CHECK_FALSE(e[8].names_file("qmm.sys"));
}

TEST_CASE("two-field lines are entries with a description and no binary") {
  TagdbFile file = fixture("two_field.txt");
  REQUIRE(file.entries.size() == 3);
  CHECK(file.stats.two_field == 1);
  CHECK(file.entries[0].binary.empty());
  CHECK(file.entries[0].description == "description only, no binary");
  CHECK(file.entries[1].binary == "tf.sys");
  CHECK(file.entries[2].binary == "tf.sys");
  CHECK(file.entries[2].description == "a description - with a dash inside");
}

TEST_CASE("free-text lines are reported with their line numbers, not guessed at") {
  TagdbFile file = fixture("free_text.txt");
  CHECK(patterns(file) == std::vector<std::string>{"Fr01", "Fr02"});
  REQUIRE(file.free_text.size() == 3);
  CHECK(file.free_text[0].line == 2);
  CHECK(file.free_text[0].text == "       <unknown>");
  CHECK(file.free_text[1].line == 3);
  CHECK(file.free_text[2].line == 4);
  CHECK(file.free_text[2].text.starts_with("Toolong"));
}

TEST_CASE("CRLF line ends and a trailing Ctrl-Z, as a text-mode read sees them") {
  TagdbFile file = fixture("dos.txt");
  CHECK(file.stats.crlf);
  CHECK(file.stats.ctrl_z);
  CHECK(patterns(file) == std::vector<std::string>{"Cr01", "Cr02"});  // Cr03 lies after the Ctrl-Z
  CHECK(file.entries[0].description == "first line");                  // no stray '\r'
  CHECK(file.stats.lines == 4);
  CHECK(file.stats.free_text == 0);
}

TEST_CASE("parsing text: every line is accounted for") {
  TagdbFile file = parse_tagdb("rem x\n\nAbcd - a.sys - d\nnot an entry at all\nAb?? - b\n", "mem");
  CHECK(file.stats.lines == 5);
  CHECK(file.stats.comments + file.stats.blank + file.stats.entries + file.stats.free_text == file.stats.lines);
  CHECK(file.stats.entries == 2);
  CHECK(file.stats.wildcards == 1);
  CHECK(file.entries[0].source == "mem");
}

TEST_CASE("join: entries naming the file agree, proven tags in unnamed drivers and unproven entries are shown") {
  TagdbFile file = parse_tagdb("Lkx1 - one.sys - a\nLkx2 - other.sys - b\nLkx3 - two.sys - c\n", "db");
  Tagdb tagdb;
  tagdb.add(file);
  DriverReport one = report_at("/d/one.sys");
  Finding named = finding_of("Lkx1", Confidence::call);
  Finding elsewhere = finding_of("Lkx2", Confidence::call);
  Finding weak = finding_of("Lkx2", Confidence::data);
  Finding unknown = finding_of("Zzq1", Confidence::call);
  one.findings = {named, elsewhere, unknown};
  CHECK_FALSE(join_finding(tagdb, named, one.path).disagrees());
  CHECK(join_finding(tagdb, named, one.path).names_file);
  CHECK(join_finding(tagdb, elsewhere, one.path).disagrees());
  CHECK_FALSE(join_finding(tagdb, weak, one.path).disagrees());  // bytes alone prove nothing
  CHECK(join_finding(tagdb, unknown, one.path).entries.empty());
  CHECK(join_finding(tagdb, unknown, one.path).disagrees());
  std::vector<const Finding*> unknown_tags = unknown_findings(tagdb, one);
  REQUIRE(unknown_tags.size() == 1);
  CHECK(unknown_tags[0]->tag == tag("Zzq1"));

  DriverReport two = report_at("/d/two.sys");  // the database names it for Lkx3, the scan found nothing
  std::vector<UnprovenEntry> unproven = unproven_search(tagdb, {tag("Lkx1"), tag("Lkx3")}, {&one, &two});
  REQUIRE(unproven.size() == 1);
  CHECK(unproven[0].tag == tag("Lkx3"));
  CHECK(unproven[0].report == &two);
  REQUIRE(unproven_driver(tagdb, two).size() == 1);
  CHECK(unproven_driver(tagdb, two)[0]->pattern == "Lkx3");
  CHECK(unproven_driver(tagdb, one).empty());
}

TEST_CASE("database location: --tagdb, then $TAGWHO_TAGDB, then the installed folder, then Windows kits") {
  const fs::path work = fs::temp_directory_path() / ("tagwho-tagdb-" + std::to_string(::getpid()));
  fs::remove_all(work);
  const fs::path kit = work / "win" / "Program Files (x86)" / "Windows Kits" / "10" / "Debuggers" / "x64" / "triage";
  fs::create_directories(kit);
  fs::create_directories(work / "win" / "Windows" / "System32" / "drivers");
  fs::create_directories(work / "installed");
  fs::create_directories(work / "empty");
  auto touch = [](const fs::path& path) { std::ofstream(path) << "Abcd - a.sys - d\n"; };
  touch(kit / "pooltag.txt");
  touch(work / "installed" / "b.txt");
  touch(work / "installed" / "a.txt");
  touch(work / "mine.txt");
  const std::string drivers = (work / "win" / "Windows" / "System32" / "drivers").string();

  TagdbSources sources;
  sources.scan_roots = {drivers};
  sources.installed_dirs = {(work / "empty").string()};
  auto choice = choose_tagdb(sources);
  REQUIRE(choice.ok());
  CHECK(choice->files == std::vector<std::string>{(kit / "pooltag.txt").string()});
  CHECK(choice->origin == "Windows kit");
  // Each folder is looked at once: a path whose folders above were looked at before (with nothing found)
  // still has its own folders looked at, up to the first of those (here, work).
  sources.scan_roots = {(work / "empty").string(), drivers + "/a.sys", drivers + "/b.sys"};
  choice = choose_tagdb(sources);
  REQUIRE(choice.ok());
  CHECK(choice->files == std::vector<std::string>{(kit / "pooltag.txt").string()});

  sources.installed_dirs.push_back((work / "installed").string());
  choice = choose_tagdb(sources);
  CHECK(choice->files == std::vector<std::string>{(work / "installed" / "a.txt").string(),
                                                  (work / "installed" / "b.txt").string()});
  sources.environment = (work / "mine.txt").string();
  CHECK(choose_tagdb(sources)->files == std::vector<std::string>{(work / "mine.txt").string()});
  sources.explicit_files = {(kit / "pooltag.txt").string(), (work / "mine.txt").string()};
  CHECK(choose_tagdb(sources)->files == sources.explicit_files);
  sources.explicit_files.push_back((work / "missing.txt").string());
  CHECK_FALSE(choose_tagdb(sources).ok());
  sources.explicit_files.clear();
  sources.environment = (work / "missing.txt").string();
  CHECK_FALSE(choose_tagdb(sources).ok());

  TagdbSources nothing;
  nothing.installed_dirs = {(work / "empty").string()};
  nothing.scan_roots = {(work / "empty").string()};
  choice = choose_tagdb(nothing);
  REQUIRE(choice.ok());
  CHECK(choice->files.empty());
  fs::remove_all(work);
}

TEST_CASE("the project's own tagdb/ parses cleanly and names the sample drivers") {
  Tagdb tagdb;
  for (const auto& item : fs::directory_iterator(fs::path(TAGWHO_SOURCE_DIR) / "tagdb"))
    if (item.path().extension() == ".txt") tagdb.add(*load_tagdb_file(item.path().string()));
  REQUIRE_FALSE(tagdb.empty());
  for (const TagdbFile& file : tagdb.files()) CHECK(file.free_text.empty());
  CHECK(found(tagdb, "None").size() == 1);
  CHECK(found(tagdb, "Ddk").size() == 1);
  CHECK(tagdb.lookup(tag("Ddk"))[0]->pattern == "Ddk ");
  // Every sample's proven tags are known, and every build the file lists by name is named for them: no
  // disagreement on our own samples.
  std::string binaries;
  for (const TagdbFile& file : tagdb.files())
    for (const TagdbEntry& entry : file.entries) binaries += entry.binary + "/";
  size_t named = 0;
  for (const FileResult& result : scan_driver_mode({std::string(TAGWHO_SOURCE_DIR) + "/samples/bin"})) {
    CAPTURE(result.report.path);
    CHECK_FALSE(result.report.findings.empty());
    bool listed = binaries.find(fs::path(result.report.path).filename().string() + "/") != std::string::npos;
    for (const Finding& finding : result.report.findings) {
      TagdbJoin join = join_finding(tagdb, finding, result.report.path);
      CHECK_FALSE(join.entries.empty());
      if (listed) CHECK_FALSE(join.disagrees());
      named += join.names_file;
    }
  }
  CHECK(named >= 4 + 4 * 6 + 4);  // leak: Leak, pooluser: six tags, quiet: Leaf, in 4 builds each
}

TEST_CASE("the real pooltag.txt: every line accounted for") {
  const fs::path real = fs::path(TAGWHO_SOURCE_DIR) / ".." / "shared" / "tagdb" / "pooltag.txt";
  if (!fs::exists(real)) {
    MESSAGE("skipped: " << real.string() << " is absent");
    return;
  }
  Result<TagdbFile> loaded = load_tagdb_file(real.string());
  REQUIRE(loaded.ok());
  const TagdbFile& file = *loaded;
  const TagdbStats& stats = file.stats;
  MESSAGE("pooltag.txt: " << stats.lines << " lines, " << stats.entries << " entries (" << stats.two_field
                          << " two-field, " << stats.wildcards << " wildcards, " << stats.duplicates
                          << " duplicates), " << stats.comments << " comments, " << stats.blank << " blank, "
                          << stats.free_text << " free text, ctrl-z " << stats.ctrl_z);
  CHECK(stats.comments + stats.blank + stats.entries + stats.free_text == stats.lines);
  CHECK(stats.entries == file.entries.size());
  CHECK(stats.free_text == file.free_text.size());
  // The format is stable: thousands of entries, a handful of lines that are not entries.
  CHECK(stats.entries > 4000);
  CHECK(stats.free_text < 10);
  CHECK(stats.wildcards > 50);
  CHECK(stats.duplicates > 0);
  CHECK(stats.comments > 10);
  for (const TagdbEntry& entry : file.entries) {
    CAPTURE(entry.line);
    CHECK((entry.pattern.size() == 4 || entry.pattern.find('*') != std::string::npos));
  }
  // Properties of the format the parser must get right, checked on the real data without quoting it:
  // no pattern keeps a stray CR, padded patterns keep their spaces, a tag containing a space exists.
  Tagdb tagdb;
  tagdb.add(file);
  CHECK(std::any_of(file.entries.begin(), file.entries.end(),
                    [](const TagdbEntry& e) { return e.pattern[2] == ' ' && e.pattern[3] != ' '; }));
  CHECK(std::none_of(file.entries.begin(), file.entries.end(), [](const TagdbEntry& e) {
    return e.description.find('\r') != std::string::npos || e.binary.find('\r') != std::string::npos;
  }));
  CHECK_FALSE(tagdb.lookup(tag("None")).empty());
  CHECK_FALSE(tagdb.lookup(tag("Ddk")).empty());
}

TEST_CASE("--format pooltag round trip on the samples: read back, the same (tag, driver) pairs") {
  check_round_trip(scan_driver_mode({std::string(TAGWHO_SOURCE_DIR) + "/samples/bin"}));
}

TEST_CASE("--format pooltag round trip on the generated corpus") {
  const char* dir = std::getenv("TAGWHO_CORPUS_DIR");
  if (!dir || !*dir || !fs::exists(fs::path(dir) / "truth.tsv")) {
    MESSAGE("skipped: no generated corpus in TAGWHO_CORPUS_DIR");
    return;
  }
  check_round_trip(scan_driver_mode({dir}));
}

TEST_CASE("tags the format cannot carry are skipped, not written wrongly") {
  DriverReport report = report_at("/d/odd.sys");
  Evidence call;
  call.kind = Confidence::call;
  call.api = "ExAllocatePoolWithTag";
  call.rva = 0x1040;
  report.findings = {finding_of("Ab?d", Confidence::call, {call}), finding_of("\\x01bcd", Confidence::call, {call}),
                     finding_of("Good", Confidence::call, {call}), finding_of("Weak", Confidence::data, {call})};
  std::vector<Tag> skipped;
  std::string text = pooltag_lines(report, &skipped);
  CHECK(text == "Good - odd.sys - ExAllocatePoolWithTag at +0x1040 (tagwho)\n");
  CHECK(skipped.size() == 2);
}
