// Answers from the index: searches (tagwho TAG [PATH...]) and the driver listings export writes.
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <unordered_map>

#include "core/budget.hpp"
#include "core/schedule.hpp"
#include "index/store.hpp"
#include "scan/analyse.hpp"
#include "tagwho/scan.hpp"

namespace tagwho {

using namespace index_detail;

namespace {

// The outcome of searching one file's bytes for tags outside its content's literal set.
struct Searched {
  bool readable = false;
  std::vector<Finding> findings;  // the searched tags that literal evidence was found for, whole
};

// Searches one file's bytes for the tags in `missing` (outside its content's literal set), and classifies
// their hits against the content's stored call evidence for them (`calls`), as the index build's literal
// pass does: a build analysed every call site, so the stored call evidence is the whole of it and no code
// is analysed again. (Each file with a hit used to be analysed in full: an indexed search for a tag no
// driver proves took 0.98 s on the bench corpus, twice a search without the index.) Not readable: the
// bytes could not be read, or a file limit stopped the search (the stored findings stand).
Searched search_bytes(const Result<FileBytes>& read, const LiteralMatcher& matcher, const std::vector<Tag>& missing,
                      const std::vector<Evidence>& calls) {
  Searched out;
  if (!read) return out;
  auto scratch = matcher.make_scratch();
  if (!scratch) return out;
  ByteView bytes = read->view();
  try {
    budget::Scope scope(FileLimits{});
    budget::charge(bytes.size());
    const Result<PeImage> image = PeImage::load(bytes);
    const PeImage* pe = image ? &*image : nullptr;
    // (MOVZ/MOVK words: evidence in ARM64 images only, as in a scan)
    auto hits = matcher.scan(bytes, *scratch, pe && pe->machine() == Machine::arm64);
    if (!hits) return out;
    out.readable = true;
    std::vector<LiteralHit> wanted;
    for (const LiteralHit& hit : *hits)
      if (std::find(missing.begin(), missing.end(), matcher.tags()[hit.tag_index]) != missing.end())
        wanted.push_back(hit);
    if (wanted.empty()) return out;
    std::vector<Evidence> literals = classify_per_tag(wanted, matcher.tags(), pe, calls);
    out.findings = findings_with_literals(calls, std::move(literals));
  } catch (const budget::Exceeded&) {
    out = Searched{};
  }
  if (read->read_failure()) out = Searched{};  // (read as zeros from some point on)
  return out;
}

// The values of tags, sorted.
std::vector<uint32_t> values_of(const std::vector<Tag>& tags) {
  std::vector<uint32_t> values;
  for (Tag tag : tags) values.push_back(tag.value);
  std::sort(values.begin(), values.end());
  return values;
}

// The image PATH a file inside a disk image came from ("" for files on this machine): its display path is
// that PATH followed by ":".
std::string image_prefix(const SourceFile& file, const std::vector<std::string>& paths) {
  if (!file.host_path.empty()) return "";
  std::string best;
  for (const std::string& path : paths)
    if (path.size() > best.size() && inside_image(file.path, path)) best = path;
  return best;
}

// Puts a finding in its place in findings (ordered as shown: by the tag's characters), replacing the one of
// the same tag.
void put_finding(std::vector<Finding>& findings, Finding finding) {
  auto key = [](const Finding& f) { return __builtin_bswap32(f.tag.value); };
  auto at = std::lower_bound(findings.begin(), findings.end(), finding,
                             [&](const Finding& a, const Finding& b) { return key(a) < key(b); });
  if (at != findings.end() && at->tag == finding.tag) *at = std::move(finding);
  else findings.insert(at, std::move(finding));
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size() && !text.empty()) {
    size_t end = text.find('\n', start);
    lines.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return lines;
}

// The stem keys that may be named by the database entries for a tag (a superset: the exact test is
// TagdbEntry::names_file, applied afterwards by unproven_search).
std::set<std::string> named_stems(const std::vector<const TagdbEntry*>& entries) {
  std::set<std::string> stems;
  for (const TagdbEntry* entry : entries)
    for (const std::string& module : entry->modules()) {
      stems.insert(stem_key(module));
      std::string lower = module;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      stems.insert(lower);
      if (lower == "nt")
        for (const char* kernel : {"ntoskrnl", "ntkrnlmp", "ntkrnlpa", "ntkrpamp"}) stems.insert(kernel);
    }
  return stems;
}

}  // namespace

Result<IndexSearch> Index::search(const std::vector<Tag>& tags, const std::vector<std::string>& paths,
                                  const Tagdb* tagdb, unsigned threads) {
  sqlite3* db = state_->db;
  IndexSearch out;
  try {
    sql::exec(db, "BEGIN");  // one snapshot for the whole answer, even while a build writes
    struct Snapshot {
      sqlite3* db;
      ~Snapshot() { sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr); }
    } snapshot{db};
    out.analysis_outdated = meta(db, "analysis_version") != std::to_string(kIndexAnalysisVersion);

    // Which tagsets cover each tag, and the content shells read so far.
    std::map<uint32_t, std::set<int64_t>> covering;
    for (Tag tag : tags) {
      sql::Statement s(db, "SELECT tagset FROM tagset_tags WHERE tag = ?");
      s.bind(1, tag.value);
      while (s.step()) covering[tag.value].insert(s.i64(0));
    }
    std::unordered_map<int64_t, DriverReport> shells;
    auto shell = [&](int64_t content) -> const DriverReport& {
      auto found = shells.find(content);
      if (found == shells.end()) found = shells.emplace(content, read_content(db, content)).first;
      return found->second;
    };
    sql::Statement content_tagset(db, "SELECT coalesce(tagset, 0) FROM contents WHERE id = ?");
    auto covers = [&](int64_t content, Tag tag) {
      content_tagset.bind(1, content);
      int64_t set = content_tagset.step() ? content_tagset.i64(0) : 0;
      content_tagset.reset();
      return covering[tag.value].count(set) > 0;
    };
    std::shared_ptr<const LiteralMatcher> matcher;  // all the tags: for searching uncovered contents
    auto tag_matcher = [&]() -> const LiteralMatcher& {
      if (!matcher) {
        auto built = LiteralMatcher::build(tags);
        if (!built) throw sql::Failure(built.error(), 0);
        matcher = std::make_shared<const LiteralMatcher>(std::move(*built));
      }
      return *matcher;
    };

    if (paths.empty()) {
      // --- The whole index ---------------------------------------------------------------------------
      out.used = true;
      out.multi_host = sql::scalar(db, "SELECT count(*) FROM hosts h WHERE EXISTS (SELECT 1 FROM files f WHERE f.host = h.id)") > 1;
      std::map<int64_t, std::vector<Finding>> found;  // content -> findings
      for (Tag tag : tags) {
        sql::Statement s(db, "SELECT DISTINCT content FROM findings WHERE tag = ?");
        s.bind(1, tag.value);
        while (s.step())
          if (auto finding = read_finding(db, s.i64(0), tag)) put_finding(found[s.i64(0)], std::move(*finding));
      }
      // Contents whose literal set lacks a tag: search their bytes (any readable file of this host).
      std::map<int64_t, std::vector<Tag>> uncovered;
      {
        sql::Statement sets(db, "SELECT id FROM tagsets");
        std::vector<int64_t> all_sets;
        while (sets.step()) all_sets.push_back(sets.i64(0));
        for (Tag tag : tags) {
          sql::Statement s(db, "SELECT id FROM contents WHERE tagset IS NULL");
          while (s.step()) uncovered[s.i64(0)].push_back(tag);
          for (int64_t set : all_sets) {
            if (covering[tag.value].count(set)) continue;
            sql::Statement c(db, "SELECT id FROM contents WHERE tagset = ?");
            c.bind(1, set);
            while (c.step()) uncovered[c.i64(0)].push_back(tag);
          }
        }
      }
      if (!uncovered.empty()) {
        int64_t local = host_id(db, local_host_name(), false);
        FileReopener reopener(host_roots(db, local));
        struct Job {
          int64_t content;
          std::vector<std::string> paths;
          std::vector<Evidence> calls;  // stored, of the missing tags
          Searched result;
        };
        std::vector<Job> jobs;
        sql::Statement s(db, "SELECT path FROM files WHERE content = ? AND +host = ? AND kind = 'pe' ORDER BY path");
        for (const auto& [content, missing] : uncovered) {
          Job job{content, {}, read_call_evidence_of(db, content, values_of(missing)), {}};
          s.bind(1, content).bind(2, local);
          while (s.step()) job.paths.push_back(s.text(0));
          s.reset();
          jobs.push_back(std::move(job));
        }
        const LiteralMatcher& all = tag_matcher();
        parallel_for(jobs.size(), threads, [&](size_t i) {
          for (const std::string& path : jobs[i].paths) {
            jobs[i].result = search_bytes(reopener.read(path), all, uncovered.at(jobs[i].content), jobs[i].calls);
            if (jobs[i].result.readable) break;
          }
        });
        for (Job& job : jobs) {
          if (!job.result.readable) {
            ++out.unsearchable;
            continue;
          }
          ++out.searched;
          for (const Finding& finding : job.result.findings) put_finding(found[job.content], finding);
        }
      }
      // Every path of every content with a finding, and the files the tag database names.
      std::unordered_map<std::string, size_t> by_path;
      auto add_report = [&](const std::string& host, const std::string& path, int64_t content,
                            std::optional<ServiceInfo> service) -> DriverReport& {
        std::string shown = out.multi_host ? host + ":" + path : path;
        auto at = by_path.find(shown);
        if (at != by_path.end()) return out.reports[at->second];
        DriverReport report = shell(content);
        report.path = shown;
        report.service = std::move(service);
        by_path[shown] = out.reports.size();
        out.reports.push_back(std::move(report));
        return out.reports.back();
      };
      const std::string services = kServiceColumns;
      sql::Statement files_of(db, "SELECT h.name, f.path, " + services +
                                      " FROM files f JOIN hosts h ON h.id = f.host WHERE f.content = ?");
      for (auto& [content, findings] : found) {
        if (findings.empty()) continue;
        ++out.from_index;
        files_of.bind(1, content);
        while (files_of.step()) {
          DriverReport& report = add_report(files_of.text(0), files_of.text(1), content, column_service(files_of, 2));
          for (const Finding& finding : findings) put_finding(report.findings, finding);
        }
        files_of.reset();
      }
      if (tagdb) {
        std::set<std::string> stems;
        for (Tag tag : tags)
          for (const std::string& stem : named_stems(tagdb->lookup(tag))) stems.insert(stem);
        sql::Statement named(db, "SELECT h.name, f.path, f.content, " + services +
                                     " FROM files f JOIN hosts h ON h.id = f.host WHERE f.stem = ? AND f.kind = 'pe'");
        for (const std::string& stem : stems) {
          named.bind(1, stem);
          while (named.step()) add_report(named.text(0), named.text(1), named.i64(2), column_service(named, 3));
          named.reset();
        }
      }
      // Stored errors, as a scan prints them.
      {
        sql::Statement s(db, "SELECT h.name, f.path, f.error FROM files f JOIN hosts h ON h.id = f.host WHERE f.kind = 'error'"
                             " UNION ALL SELECT h.name, f.path, c.errors FROM contents c CROSS JOIN files f ON f.content = c.id"
                             " JOIN hosts h ON h.id = f.host WHERE c.errors <> ''");
        while (s.step()) {
          std::string shown = out.multi_host ? s.text(0) + ":" + s.text(1) : s.text(1);
          for (const std::string& line : split_lines(s.text(2))) out.problems.push_back({shown, line});
        }
        std::stable_sort(out.problems.begin(), out.problems.end(),
                         [](const IndexProblem& a, const IndexProblem& b) { return path_less(a.path, b.path); });
      }
      std::sort(out.reports.begin(), out.reports.end(),
                [](const DriverReport& a, const DriverReport& b) { return path_less(a.path, b.path); });
      out.files = out.reports.size();
      out.missing = read_missing_services(db, out.multi_host);
      return out;
    }

    // --- PATH...: this host's files under them, checked against the disk ----------------------------------
    int64_t local = host_id(db, local_host_name(), false);
    if (!local) return out;
    const std::vector<std::string> roots = host_roots(db, local);
    for (const std::string& path : paths) {
      std::string absolute = absolute_path(path);
      if (std::none_of(roots.begin(), roots.end(), [&](const std::string& root) { return under_root(absolute, root); }))
        return out;
    }
    out.used = true;
    // The files as a scan opens them: folders, Windows roots (with their services) and disk images.
    SourceList sources = open_sources(paths);
    for (const WalkProblem& problem : sources.problems) out.problems.push_back({problem.path, problem.message});
    out.missing = std::move(sources.missing);
    const std::vector<SourceFile>& inputs = sources.files;

    enum class Way { skip, indexed, scan };
    struct Item {
      Way way = Way::skip;
      int64_t content = 0;
      std::vector<Tag> missing;  // tags outside the content's literal set
      std::vector<Evidence> calls;  // their stored call and wrapper evidence
      std::vector<IndexProblem> problems;
      FileResult scanned;
      Searched searched;
      // Files in images: their volume's size and mtime do not prove them unchanged; their bytes, hashed
      // against the stored content, decide (see source_identity in build.cpp).
      bool verify = false;
      std::string stored_kind, stored_hash;
      bool changed = false;
    };
    std::vector<Item> items(inputs.size());
    std::set<std::string> walked;
    sql::Statement row(db, "SELECT f.size, f.mtime_ns, f.kind, coalesce(f.content, 0), coalesce(c.hash, '')"
                           " FROM files f LEFT JOIN contents c ON c.id = f.content WHERE f.host = ? AND f.path = ?");
    for (size_t i = 0; i < inputs.size(); ++i) {
      Item& item = items[i];
      const SourceFile& input = inputs[i];
      std::string prefix = image_prefix(input, paths);
      std::string absolute = input.host_path.empty() ? absolute_path(prefix) + input.path.substr(prefix.size())
                                                     : absolute_path(input.path);
      walked.insert(absolute);
      struct stat info {};
      bool statted = !input.host_path.empty() && ::stat(input.host_path.c_str(), &info) == 0;
      int64_t mtime_ns = static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec;
      row.bind(1, local).bind(2, absolute);
      bool known = row.step();
      bool same = known && statted && row.i64(0) == static_cast<int64_t>(info.st_size) && row.i64(1) == mtime_ns;
      std::string kind = known ? row.text(2) : "";
      int64_t content = known ? row.i64(3) : 0;
      std::string hash = known ? row.text(4) : "";
      row.reset();
      if (known && input.host_path.empty() && kind != "error") {
        item.verify = true;
        item.stored_kind = kind;
        item.stored_hash = hash;
        same = true;  // until the bytes say otherwise
      }
      if (same && kind == "not_pe") {
        if (input.explicit_path) item.problems.push_back({input.path, "not a PE file"});
        continue;
      }
      if (same && kind == "pe") {
        item.way = Way::indexed;
        item.content = content;
        for (Tag tag : tags)
          if (!covers(content, tag)) item.missing.push_back(tag);
        item.calls = read_call_evidence_of(db, content, values_of(item.missing));
        continue;
      }
      item.way = Way::scan;
      if (known) ++out.stale_changed; else ++out.stale_new;
    }
    {
      // Indexed files under the PATHs (and inside the images they name) that the walk no longer finds.
      sql::Statement s(db, "SELECT path FROM files WHERE host = ? AND (path = ? OR (path > ? AND path < ?) OR (path > ? AND path < ?))");
      std::set<std::string> gone;
      for (const std::string& path : paths) {
        std::string absolute = absolute_path(path);
        s.bind(1, local).bind(2, absolute).bind(3, absolute + "/").bind(4, absolute + "0").bind(5, absolute + ":")
            .bind(6, absolute + ";");
        while (s.step())
          if (!walked.count(s.text(0))) gone.insert(s.text(0));
        s.reset();
      }
      out.stale_gone = gone.size();
    }
    // Stale files are scanned as a scan would; uncovered contents searched; both in parallel.
    bool any_verify = std::any_of(items.begin(), items.end(), [](const Item& item) { return item.verify; });
    std::unique_ptr<Scanner> scanner;
    if (out.stale_changed + out.stale_new || any_verify) {
      auto created = Scanner::create(ScanRequest{tags, false});
      if (!created) throw sql::Failure(created.error(), 0);
      scanner = std::make_unique<Scanner>(std::move(*created));
    }
    const LiteralMatcher* all = nullptr;
    for (const Item& item : items)
      if (item.way == Way::indexed && !item.missing.empty()) all = &tag_matcher();
    parallel_for(items.size(), threads, [&](size_t i) {
      Item& item = items[i];
      const SourceFile& input = inputs[i];
      if (item.verify) {
        auto read = input.read();
        bool still = false;
        if (read && item.stored_kind == "not_pe") still = read->view().u16(0) != uint16_t{0x5a4d};
        else if (read) still = read->view().u16(0) == uint16_t{0x5a4d} && hex64(content_hash(read->view())) == item.stored_hash;
        if (read && read->read_failure()) still = false;  // (then analysed: an error)
        if (!still) {
          item.changed = true;
          item.way = Way::scan;
          item.scanned = analyse_source(*scanner, input, read);
        } else if (item.way == Way::indexed && !item.missing.empty() && all) {
          item.searched = search_bytes(read, *all, item.missing, item.calls);
        }
        return;
      }
      if (item.way == Way::scan) item.scanned = analyse_source(*scanner, input);
      else if (item.way == Way::indexed && !item.missing.empty() && all)
        item.searched = search_bytes(input.read(), *all, item.missing, item.calls);
    });
    for (const Item& item : items) out.stale_changed += item.changed ? 1 : 0;
    for (size_t i = 0; i < items.size(); ++i) {
      Item& item = items[i];
      for (IndexProblem& problem : item.problems) out.problems.push_back(std::move(problem));
      if (item.way == Way::skip) continue;
      ++out.files;
      DriverReport report;
      if (item.way == Way::scan) {
        if (item.scanned.not_pe) {
          if (inputs[i].explicit_path) out.problems.push_back({item.scanned.report.path, "not a PE file"});
          continue;
        }
        report = std::move(item.scanned.report);
      } else {
        ++out.from_index;
        report = shell(item.content);
        report.path = inputs[i].path;
        report.service = inputs[i].service;
        for (Tag tag : tags)
          if (auto finding = read_finding(db, item.content, tag)) put_finding(report.findings, std::move(*finding));
        if (!item.missing.empty()) {
          if (!item.searched.readable) ++out.unsearchable;
          else ++out.searched;
          for (Finding& finding : item.searched.findings) put_finding(report.findings, std::move(finding));
        }
      }
      for (const std::string& error : report.errors) out.problems.push_back({report.path, error});
      out.reports.push_back(std::move(report));
    }
    return out;
  } catch (const sql::Failure& failure) {
    if ((failure.code & 0xff) == SQLITE_BUSY)
      return Error{state_->path + ": the index is locked by another tagwho process (waited for it; try again)"};
    return Error{state_->path + ": " + failure.what()};
  }
}

Result<bool> Index::for_each_driver(const std::function<void(const std::string& host, const DriverReport&)>& visit) {
  sqlite3* db = state_->db;
  try {
    sql::exec(db, "BEGIN");
    struct Snapshot {
      sqlite3* db;
      ~Snapshot() { sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr); }
    } snapshot{db};
    struct Row {
      std::string host, path, kind, error;
      int64_t content;
      std::optional<ServiceInfo> service;
    };
    std::vector<Row> rows;
    sql::Statement s(db, std::string("SELECT h.name, f.path, f.kind, coalesce(f.content, 0), f.error, ") + kServiceColumns +
                             " FROM files f JOIN hosts h ON h.id = f.host WHERE f.kind <> 'not_pe'");
    while (s.step()) rows.push_back(Row{s.text(0), s.text(1), s.text(2), s.text(4), s.i64(3), column_service(s, 5)});
    std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
      if (a.host != b.host) return a.host < b.host;
      return path_less(a.path, b.path);
    });
    std::unordered_map<int64_t, DriverReport> cache;
    for (const Row& row : rows) {
      if (row.kind == "error") {
        DriverReport report;
        report.path = row.path;
        report.errors.push_back(row.error);
        visit(row.host, report);
        continue;
      }
      auto found = cache.find(row.content);
      if (found == cache.end()) {
        DriverReport report = read_content(db, row.content);
        std::map<uint32_t, Finding> by_tag;
        for (Evidence& e : read_call_evidence(db, row.content)) {
          Finding& finding = by_tag[__builtin_bswap32(e.tag.value)];
          finding.tag = e.tag;
          finding.best = std::max(finding.best, e.kind);
          finding.evidence.push_back(std::move(e));
        }
        for (auto& [key, finding] : by_tag) report.findings.push_back(std::move(finding));
        if (cache.size() > 4096) cache.clear();
        found = cache.emplace(row.content, std::move(report)).first;
      }
      DriverReport report = found->second;
      report.path = row.path;
      report.service = row.service;
      visit(row.host, report);
    }
  } catch (const sql::Failure& failure) {
    return Error{state_->path + ": " + failure.what()};
  }
  return true;
}

}  // namespace tagwho
