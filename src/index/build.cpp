// index build / update: walk the roots, analyse what is new or changed (each distinct content once), and
// bring every local content's literal evidence up to the set of tags proven anywhere in the index (those
// that read as text: reads_as_text). All of it in one write transaction: a build killed at any moment leaves
// the previous index as it was.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>

#include "core/budget.hpp"
#include "core/schedule.hpp"
#include "index/store.hpp"
#include "scan/analyse.hpp"
#include "scan/classify.hpp"
#include "tagwho/scan.hpp"

namespace tagwho {

using namespace index_detail;

namespace {

struct Existing {
  int64_t id = 0;
  int64_t size = 0;
  int64_t mtime_ns = 0;
  std::string kind;
  int64_t content = 0;
  bool has_service = false;
};

// One file to (re)look at.
struct Todo {
  std::string path;      // absolute (files in images: "IMAGE:/..." with IMAGE absolute)
  SourceFile source;
  int64_t size = 0;
  int64_t mtime_ns = 0;
  bool existed = false;
  bool trusted = true;        // size and mtime say whether it changed (false: files in images, see source_identity)
  std::string old_kind;       // when it existed: what the index held
  int64_t old_content = 0;
  // filled by the worker
  std::string kind;      // pe, not_pe, error
  std::string error;
  std::string hash;
  int64_t content = 0;   // known content (0: new, see analysed)
  int analysed = -1;     // index into the new contents analysed by this run
};

bool stat_file(const std::string& path, int64_t& size, int64_t& mtime_ns, std::string& error) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    error = std::strerror(errno);
    return false;
  }
  size = static_cast<int64_t>(info.st_size);
  mtime_ns = static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec;
  return true;
}

// Size and mtime of a source file. Files on this machine: stat (nanoseconds). Files inside disk images: the
// volume's own metadata, which an image replaced by another could repeat for other bytes, so `trusted` is
// false and their bytes are always hashed again (cheap beside analysis: only new contents are analysed).
bool source_identity(const SourceFile& file, int64_t& size, int64_t& mtime_ns, bool& trusted, std::string& error) {
  trusted = !file.host_path.empty();
  if (trusted) return stat_file(file.host_path, size, mtime_ns, error);
  size = static_cast<int64_t>(file.size);
  mtime_ns = file.mtime * 1000000000;
  return true;
}

template <typename Values>  // a std::set or a sorted vector of tag values
std::vector<Tag> as_tags(const Values& values) {
  std::vector<Tag> tags;
  for (uint32_t value : values) tags.push_back(Tag{value});
  return tags;
}

// [first, last) ranges of `need` (sorted tag values) whose tags have at most `group_hits` hits in all,
// unless one tag alone has more. hits_of_tag: the number of hits of each tag of `need`.
std::vector<std::pair<size_t, size_t>> tag_groups(const std::vector<size_t>& hits_of_tag, size_t group_hits) {
  std::vector<std::pair<size_t, size_t>> groups;
  size_t first = 0, in_group = 0;
  for (size_t i = 0; i < hits_of_tag.size(); ++i) {
    if (i > first && in_group + hits_of_tag[i] > group_hits) {
      groups.emplace_back(first, i);
      first = i;
      in_group = 0;
    }
    in_group += hits_of_tag[i];
  }
  if (first < hits_of_tag.size()) groups.emplace_back(first, hits_of_tag.size());
  return groups;
}

// Whether a proven tag's literal evidence is stored ahead: when its bytes read as text (printable ASCII, or
// a shorter tag padded with NULs), as pool tags do. A constant that does not (0, or code bytes such as
// 0x10909090 passed as a tag) matches almost everywhere: on the bench corpus such tags were 14% of the
// proven ones and 70% of the index's rows, and one of them had 650,000 hits in one driver. A query for one
// searches the contents afresh instead, as for any tag outside a content's literal set: same answer.
bool reads_as_text(uint32_t tag) {
  int nuls = 0;
  for (int i = 0; i < 4; ++i) {
    const uint8_t byte = static_cast<uint8_t>(tag >> (8 * i));
    if (byte == 0)
      ++nuls;
    else if (byte < 0x20 || byte > 0x7e)
      return false;
  }
  return nuls <= 2;
}

// Brings each local content's literal evidence up to `wanted`: searches its bytes for the tags its tagset
// lacks, and classifies the hits with its stored call evidence. Contents with no readable file keep their
// tagset (their answers for the missing tags come from a search at query time, or say they are partial).
void extend_literal_sets(sqlite3* db, int64_t host, const std::set<uint32_t>& wanted, int64_t wanted_set,
                         const IndexBuildOptions& options, FileReopener& files, IndexCounts& counts) {
  const unsigned threads = std::max(1u, options.threads);
  const FileLimits& limits = options.limits;
  struct Job {
    int64_t content = 0;
    std::string hash;
    int64_t size = 0;
    std::vector<std::string> paths;
    int64_t tagset = 0;
  };
  std::vector<Job> jobs;
  {
    sql::Statement s(db,
        "SELECT c.id, c.hash, coalesce(c.tagset, 0), f.path, c.size FROM contents c JOIN files f ON f.content = c.id"
        " WHERE f.host = ? AND f.kind = 'pe' AND coalesce(c.tagset, 0) <> ? ORDER BY c.id, f.path");
    s.bind(1, host).bind(2, wanted_set);
    while (s.step()) {
      if (jobs.empty() || jobs.back().content != s.i64(0)) {
        jobs.emplace_back();
        jobs.back().content = s.i64(0);
        jobs.back().hash = s.text(1);
        jobs.back().tagset = s.i64(2);
        jobs.back().size = s.i64(4);
      }
      jobs.back().paths.push_back(s.text(3));
    }
  }
  if (jobs.empty()) return;
  // This pass writes each content's rows together (the findings are keyed by content), but their entries
  // in the index by tag go all over it: a page cache of 32 MB instead of SQLite's 2 MB holds that index
  // (4 MB on the bench corpus) instead of spilling it to the WAL and reading it back. When the findings
  // were keyed by tag, it took the build from 19.0 to 16.5 s; keyed by content, the difference is within
  // the bench's noise (11.9 against 12.3 s), and it grows with the index. It does not move the build's peak
  // memory, which the analysis of the largest files sets.
  const int64_t cache_size = sql::scalar(db, "PRAGMA cache_size");
  sql::exec(db, "PRAGMA cache_size = -32768");
  struct RestoreCache {
    sqlite3* db;
    int64_t size;
    ~RestoreCache() { sqlite3_exec(db, ("PRAGMA cache_size = " + std::to_string(size)).c_str(), nullptr, nullptr, nullptr); }
  } restore_cache{db, cache_size};
  // One matcher per distinct missing set (normally one: every content was at the same set before).
  std::map<int64_t, std::vector<uint32_t>> missing;  // sorted tag values
  for (const Job& job : jobs) {
    if (missing.count(job.tagset)) continue;
    std::set<uint32_t> have = job.tagset ? tagset_tags(db, job.tagset) : std::set<uint32_t>{};
    std::vector<uint32_t>& need = missing[job.tagset];
    std::set_difference(wanted.begin(), wanted.end(), have.begin(), have.end(), std::back_inserter(need));
  }
  std::map<int64_t, std::shared_ptr<const LiteralMatcher>> matchers;
  for (const auto& [set, need] : missing) {
    if (need.empty()) continue;
    auto matcher = LiteralMatcher::build(as_tags(need));
    if (!matcher) throw sql::Failure("cannot build the literal matcher: " + matcher.error(), 0);
    matchers[set] = std::make_shared<const LiteralMatcher>(std::move(*matcher));
  }
  // The workers read and write the database themselves, one at a time, so that each content's evidence is
  // stored group by group as it is built.
  std::mutex db_lock;
  sql::Statement set_tagset(db, "UPDATE contents SET tagset = ? WHERE id = ?");
  const auto extend = [&](const Job& job) {
    auto found = matchers.find(job.tagset);
    if (found == matchers.end()) {  // nothing missing
      std::lock_guard<std::mutex> guard(db_lock);
      set_tagset.bind(1, wanted_set).bind(2, job.content).run();
      return;
    }
    const LiteralMatcher& matcher = *found->second;
    const std::vector<uint32_t>& need = missing.at(job.tagset);
    // The groups stored before a stop, put back as they were: their call evidence only (under db_lock).
    const auto put_back = [&](const std::vector<std::vector<uint32_t>>& stored) {
      for (const std::vector<uint32_t>& group : stored)
        replace_findings(db, job.content, group_by_tag(read_call_evidence_of(db, job.content, group)), group);
    };
    for (const std::string& path : job.paths) {
      auto read = files.read(path);
      if (!read || hex64(content_hash(read->view())) != job.hash) continue;  // changed under us: next path
      ByteView bytes = read->view();
      auto scratch = matcher.make_scratch();
      if (!scratch) return;
      // Within the file's limits, as its analysis was: a content over them keeps its literal set, and a
      // search for the new tags reads it afresh (and stops as a scan would). The groups stored before a stop
      // are put back as they were (their call evidence only).
      std::vector<std::vector<uint32_t>> stored;
      try {
        budget::Scope scope(limits);
        budget::charge(bytes.size());
        const Result<PeImage> image = PeImage::load(bytes);
        const PeImage* pe = image ? &*image : nullptr;
        // MOVZ/MOVK words are evidence in ARM64 images only: elsewhere classification drops them, so they
        // are not looked for, as in a scan.
        auto hits = matcher.scan(bytes, *scratch, pe && pe->machine() == Machine::arm64);
        if (!hits) return;
        const ImmediateUses uses(*hits, pe);  // once for the content, not once per group
        // The matcher's tags are `need`, in order: a hit's tag index is its tag's place in `need`.
        std::vector<size_t> hits_of_tag(need.size(), 0);
        for (const LiteralHit& hit : *hits) ++hits_of_tag[hit.tag_index];
        // Only the rows of tags that gain literal evidence are written. The row of a tag outside the
        // content's literal set holds its call and wrapper evidence only (literal evidence is stored for the
        // tags of the set alone), which is what classifying its hits gives back when they add nothing: hits
        // on the instruction that supplies a call's tag, or MOVZ/MOVK words that pair with nothing. On the
        // bench corpus, 121,000 of the 634,000 tags with hits in a content gained evidence (counted while
        // MOVZ/MOVK words were still looked for in every image).
        for (const auto& [first, last] : tag_groups(hits_of_tag, std::max<size_t>(1, options.literal_group_hits))) {
          budget::tick_now();
          std::vector<LiteralHit> group_hits;
          std::vector<uint32_t> hit_tags;
          for (const LiteralHit& hit : *hits)
            if (hit.tag_index >= first && hit.tag_index < last) {
              group_hits.push_back(hit);
              hit_tags.push_back(need[hit.tag_index]);
            }
          if (group_hits.empty()) continue;
          std::sort(hit_tags.begin(), hit_tags.end());
          hit_tags.erase(std::unique(hit_tags.begin(), hit_tags.end()), hit_tags.end());
          std::vector<Evidence> calls;
          {
            std::lock_guard<std::mutex> guard(db_lock);
            calls = read_call_evidence_of(db, job.content, hit_tags);
          }
          std::vector<Evidence> literals = classify_per_tag(group_hits, matcher.tags(), pe, calls, &uses);
          if (literals.empty()) continue;
          const std::vector<uint32_t> changed = tags_of(literals);
          const std::vector<Finding> findings = findings_with_literals(std::move(calls), std::move(literals));
          std::lock_guard<std::mutex> guard(db_lock);
          replace_findings(db, job.content, findings, changed);
          stored.push_back(changed);
        }
      } catch (const budget::Exceeded&) {
        std::lock_guard<std::mutex> guard(db_lock);
        put_back(stored);
        return;
      }
      if (read->read_failure()) {  // it was read as zeros from some point on: the next path, if any
        std::lock_guard<std::mutex> guard(db_lock);
        put_back(stored);
        continue;
      }
      std::lock_guard<std::mutex> guard(db_lock);
      ++counts.literal_rescans;
      set_tagset.bind(1, wanted_set).bind(2, job.content).run();
      return;
    }
  };
  run_largest_first(
      jobs.size(), threads, [&](size_t i) { return static_cast<uint64_t>(std::max<int64_t>(jobs[i].size, 0)); },
      [&](size_t i) { extend(jobs[i]); });
}

}  // namespace

// The shared body of build and update.
static IndexCounts synchronise(sqlite3* db, const std::string& host_name, const std::vector<std::string>* new_roots,
                               bool fresh, const IndexBuildOptions& options) {
  const unsigned threads = std::max(1u, options.threads);
  const FileLimits& limits = options.limits;
  IndexCounts counts;
  int64_t host = host_id(db, host_name, true);
  if (meta(db, "analysis_version") != std::to_string(kIndexAnalysisVersion)) {
    // Another analysis made these answers: everything is analysed again (other hosts' files cannot be, and
    // are dropped: merge their updated indexes again).
    sql::exec(db, "DELETE FROM findings; DELETE FROM files WHERE content IS NOT NULL;"
                  "DELETE FROM contents; DELETE FROM tagset_tags; DELETE FROM tagsets; DELETE FROM meta WHERE key = 'literal_tagset';");
    sql::exec(db, "DELETE FROM roots WHERE host NOT IN (SELECT host FROM files)");
    set_meta(db, "analysis_version", std::to_string(kIndexAnalysisVersion));
  }
  std::vector<std::string> roots;
  if (new_roots) {
    for (const std::string& root : *new_roots) roots.push_back(absolute_path(root));
    sql::Statement drop(db, "DELETE FROM roots WHERE host = ?");
    drop.bind(1, host).run();
    sql::Statement add(db, "INSERT OR IGNORE INTO roots(host, path) VALUES (?, ?)");
    for (const std::string& root : roots) add.bind(1, host).bind(2, root).run();
  } else {
    roots = host_roots(db, host);
    if (roots.empty()) throw sql::Failure("no roots recorded for host " + host_name + ": give PATH... to tagwho index build", 0);
  }
  if (fresh) {
    sql::Statement drop(db, "DELETE FROM files WHERE host = ?");
    drop.bind(1, host).run();
    collect_garbage(db);
  }

  // What the index holds for this host now.
  std::unordered_map<std::string, Existing> existing;
  {
    sql::Statement s(db, "SELECT id, path, size, mtime_ns, kind, coalesce(content, 0), service_name IS NOT NULL"
                         " FROM files WHERE host = ?");
    s.bind(1, host);
    while (s.step()) existing[s.text(1)] = Existing{s.i64(0), s.i64(2), s.i64(3), s.text(4), s.i64(5), s.i64(6) != 0};
  }
  std::unordered_map<std::string, int64_t> known_contents;  // "hash:size" -> id
  {
    sql::Statement s(db, "SELECT id, hash, size FROM contents");
    while (s.step()) known_contents[s.text(1) + ":" + std::to_string(s.i64(2))] = s.i64(0);
  }
  int64_t literal_set = std::atoll(meta(db, "literal_tagset").c_str());
  std::set<uint32_t> literal_tags = literal_set ? tagset_tags(db, literal_set) : std::set<uint32_t>{};
  if (!literal_set) {
    literal_set = make_tagset(db, {});
    set_meta(db, "literal_tagset", std::to_string(literal_set));
  }

  // Walk: folders, mounted Windows roots (the places drivers live) and disk images, as a scan reads them.
  SourceList sources = open_sources(roots);
  for (const WalkProblem& problem : sources.problems) counts.problems.push_back({problem.path, problem.message});
  store_missing_services(db, host, sources.missing);
  FileReopener reopener(roots);
  std::set<std::string> seen;
  std::vector<Todo> todo;
  sql::Statement set_service(db, std::string("UPDATE files SET (") + kServiceColumns + ") = (?,?,?,?,?,?,?) WHERE id = ?");
  for (SourceFile& file : sources.files) {
    std::string path = file.host_path.empty() ? file.path : absolute_path(file.path);
    if (!seen.insert(path).second) continue;  // overlapping roots
    ++counts.files;
    Todo item;
    item.path = path;
    std::string error;
    bool trusted = false;
    if (!source_identity(file, item.size, item.mtime_ns, trusted, error)) {
      counts.problems.push_back({path, error});
      continue;
    }
    item.trusted = trusted;
    auto found = existing.find(path);
    if (found != existing.end()) {
      item.existed = true;
      const Existing& old = found->second;
      item.old_kind = old.kind;
      item.old_content = old.content;
      if (trusted && old.size == item.size && old.mtime_ns == item.mtime_ns && old.kind != "error") {
        if (old.kind == "pe") {
          ++counts.pe_files;
          ++counts.reused;
        }
        // The file is the same; its service may not be (the SYSTEM hive changed).
        if (old.has_service || file.service) {
          bind_service(set_service, 1, file.service);
          set_service.bind(8, old.id).run();
        }
        continue;
      }
    }
    file.path = path;
    item.source = std::move(file);
    reopener.know(item.source);
    todo.push_back(std::move(item));
  }
  for (const auto& [path, old] : existing) {
    if (seen.count(path)) continue;
    sql::Statement drop(db, "DELETE FROM files WHERE id = ?");
    drop.bind(1, old.id).run();
    ++counts.removed;
  }

  // Hash, and analyse each new content once (the first file to claim a hash analyses it).
  std::unique_ptr<LiteralMatcher> matcher;
  if (!literal_tags.empty()) {
    auto built = LiteralMatcher::build(as_tags(literal_tags));
    if (!built) throw sql::Failure("cannot build the literal matcher: " + built.error(), 0);
    matcher = std::make_unique<LiteralMatcher>(std::move(*built));
  }
  std::mutex lock;     // claims
  std::mutex db_lock;  // the database, written by the workers
  std::unordered_map<std::string, int> claimed;  // "hash:size" -> slot (index in fresh_ids)
  size_t slots = 0;
  std::vector<int64_t> fresh_ids(todo.size(), 0);  // by slot: the content stored for it
  std::vector<std::string> slot_failures(todo.size());  // by slot: why nothing was stored (written by its owner)
  std::vector<std::pair<size_t, IndexProblem>> analysis_problems;  // by item, sorted at the end
  // Each new content is stored by its worker as soon as it is analysed, and its results freed: memory does
  // not grow with the number of files (and large files are analysed one at a time).
  run_largest_first(
      todo.size(), threads, [&](size_t i) { return static_cast<uint64_t>(std::max<int64_t>(todo[i].size, 0)); },
      [&](size_t i) {
        Todo& item = todo[i];
        auto read = item.source.read();
        if (!read) {
          item.kind = "error";
          item.error = read.error();
          return;
        }
        ByteView bytes = read->view();
        if (bytes.u16(0) != uint16_t{0x5a4d}) {
          item.kind = "not_pe";  // (files in images: only their first bytes were read)
          return;
        }
        item.kind = "pe";
        item.size = static_cast<int64_t>(bytes.size());
        item.hash = hex64(content_hash(bytes));
        const auto read_failed = [&] {  // (the hash, or the analysis, read zeros for some of the file)
          const std::optional<std::string> failure = read->read_failure();
          if (!failure) return false;
          item.kind = "error";
          item.error = *failure;
          return true;
        };
        if (read_failed()) return;
        std::string key = item.hash + ":" + std::to_string(bytes.size());
        int slot = -1;
        {
          std::lock_guard<std::mutex> guard(lock);
          auto known = known_contents.find(key);
          if (known != known_contents.end()) {
            item.content = known->second;
            return;
          }
          auto taken = claimed.find(key);
          if (taken != claimed.end()) {
            item.analysed = taken->second;
            return;
          }
          slot = static_cast<int>(slots++);
          claimed[key] = slot;
          item.analysed = slot;
        }
        const FileResult result = analyse_file_bytes(item.path, bytes, true, {}, matcher.get(), true, limits);
        if (read_failed()) {  // nothing stored: its duplicates are errors too (below)
          slot_failures[static_cast<size_t>(slot)] = item.error;
          return;
        }
        const DriverReport& report = result.report;
        std::lock_guard<std::mutex> guard(db_lock);
        // The analysis's own errors (a damaged PE, a file over its limits) are said once, for the path that
        // was analysed, as a scan says them; they are also stored with the content.
        for (const std::string& error : report.errors) analysis_problems.push_back({i, IndexProblem{report.path, error}});
        fresh_ids[static_cast<size_t>(slot)] = insert_content(db, item.hash, report, literal_set);
        counts.bytes_analysed += report.size;
      });
  std::stable_sort(analysis_problems.begin(), analysis_problems.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [item, problem] : analysis_problems) counts.problems.push_back(std::move(problem));
  // Files whose content was claimed by a file whose reads then failed while it was analysed have no content.
  for (Todo& item : todo)
    if (item.kind == "pe" && item.analysed >= 0 && !slot_failures[static_cast<size_t>(item.analysed)].empty()) {
      item.kind = "error";
      item.error = slot_failures[static_cast<size_t>(item.analysed)];
    }
  counts.analysed = slots;
  sql::Statement upsert(db,
      std::string("INSERT INTO files(host, path, stem, size, mtime_ns, kind, content, error, ") + kServiceColumns +
      ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
      " ON CONFLICT(host, path) DO UPDATE SET stem = excluded.stem, size = excluded.size, mtime_ns = excluded.mtime_ns,"
      " kind = excluded.kind, content = excluded.content, error = excluded.error, service_name = excluded.service_name,"
      " service_display_name = excluded.service_display_name, service_image_path = excluded.service_image_path,"
      " service_start = excluded.service_start, service_type = excluded.service_type,"
      " service_group = excluded.service_group, service_control_set = excluded.service_control_set");
  std::set<int> first_of_fresh;
  for (const Todo& item : todo) {
    int64_t content = item.analysed >= 0 ? fresh_ids[static_cast<size_t>(item.analysed)] : item.content;
    upsert.bind(1, host).bind(2, item.path).bind(3, stem_key(item.path)).bind(4, item.size).bind(5, item.mtime_ns)
        .bind(6, item.kind);
    if (item.kind == "pe") upsert.bind(7, content); else upsert.bind_null(7);
    upsert.bind(8, item.error);
    bind_service(upsert, 9, item.source.service);
    upsert.run();
    // A file in an image read again with the same bytes is unchanged (its stored analysis is kept).
    bool unchanged = !item.trusted && item.existed && item.kind == item.old_kind && item.kind != "error" &&
                     (item.kind != "pe" || content == item.old_content);
    if (unchanged) {
      if (item.kind == "pe") {
        ++counts.pe_files;
        ++counts.reused;
      }
      continue;
    }
    if (item.existed) ++counts.changed; else ++counts.added;
    if (item.kind == "error") counts.problems.push_back({item.path, item.error});
    if (item.kind != "pe") continue;
    ++counts.pe_files;
    if (item.analysed < 0 || !first_of_fresh.insert(item.analysed).second) ++counts.reused;
  }
  counts.duplicates = static_cast<size_t>(sql::scalar(db,
      ("SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM files WHERE host = " + std::to_string(host) +
       " AND kind = 'pe' GROUP BY content)").c_str()));
  collect_garbage(db);

  // Literal evidence for every tag proven anywhere in the index that reads as text, in every local content.
  std::set<uint32_t> wanted = literal_tags;
  {
    sql::Statement s(db, "SELECT DISTINCT tag FROM findings WHERE confidence IN ('call', 'wrapper')");
    while (s.step())
      if (reads_as_text(static_cast<uint32_t>(s.i64(0)))) wanted.insert(static_cast<uint32_t>(s.i64(0)));
  }
  int64_t wanted_set = literal_set;
  if (wanted != literal_tags) {
    wanted_set = make_tagset(db, wanted);
    set_meta(db, "literal_tagset", std::to_string(wanted_set));
  }
  extend_literal_sets(db, host, wanted, wanted_set, options, reopener, counts);
  collect_garbage(db);
  counts.literal_tags = wanted.size();

  sql::Statement stamp(db, "UPDATE hosts SET indexed_at = ? WHERE id = ?");
  stamp.bind(1, now_seconds()).bind(2, host).run();
  set_meta(db, "updated_at", std::to_string(now_seconds()));
  set_meta(db, "tagwho_version", TAGWHO_VERSION);
  return counts;
}

static Result<IndexCounts> run_synchronise(Index::State& state, const std::vector<std::string>* roots, bool fresh,
                                           const IndexBuildOptions& options) {
  IndexCounts counts;
  try {
    write_transaction(state.db, [&] {
      counts = synchronise(state.db, options.host.empty() ? local_host_name() : options.host, roots, fresh,
                           options);
    });
  } catch (const sql::Failure& failure) {
    if ((failure.code & 0xff) == SQLITE_BUSY)
      return Error{state.path + ": the index is being written by another tagwho process (waited for it; try again when it has finished)"};
    if ((failure.code & 0xff) == SQLITE_READONLY) return Error{state.path + ": the index is read-only"};
    return Error{state.path + ": " + failure.what()};
  }
  return counts;
}

Result<IndexCounts> Index::build(const std::vector<std::string>& roots, const IndexBuildOptions& options) {
  return run_synchronise(*state_, roots.empty() ? nullptr : &roots, true, options);
}

Result<IndexCounts> Index::update(const IndexBuildOptions& options) {
  return run_synchronise(*state_, nullptr, false, options);
}

}  // namespace tagwho
