// Opening, creating and validating an index; stats; merge.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "index/store.hpp"

namespace tagwho {

using namespace index_detail;

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE hosts(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, indexed_at INTEGER NOT NULL DEFAULT 0);
CREATE TABLE roots(host INTEGER NOT NULL REFERENCES hosts(id), path TEXT NOT NULL, PRIMARY KEY(host, path));
CREATE TABLE tagsets(id INTEGER PRIMARY KEY, tag_count INTEGER NOT NULL);
CREATE TABLE tagset_tags(tagset INTEGER NOT NULL REFERENCES tagsets(id), tag INTEGER NOT NULL,
                         PRIMARY KEY(tagset, tag)) WITHOUT ROWID;
CREATE TABLE contents(id INTEGER PRIMARY KEY, hash TEXT NOT NULL, size INTEGER NOT NULL, machine TEXT NOT NULL,
                      parsed INTEGER NOT NULL, company TEXT NOT NULL, description TEXT NOT NULL,
                      file_version TEXT NOT NULL, product_name TEXT NOT NULL, original_filename TEXT NOT NULL,
                      errors TEXT NOT NULL, tagset INTEGER REFERENCES tagsets(id), analysed_at INTEGER NOT NULL,
                      UNIQUE(hash, size));
CREATE INDEX contents_tagset ON contents(tagset);
CREATE INDEX contents_errors ON contents(id) WHERE errors <> '';
CREATE TABLE files(id INTEGER PRIMARY KEY, host INTEGER NOT NULL REFERENCES hosts(id), path TEXT NOT NULL,
                   stem TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, kind TEXT NOT NULL,
                   content INTEGER REFERENCES contents(id), error TEXT NOT NULL DEFAULT '',
                   service_name TEXT, service_display_name TEXT, service_image_path TEXT, service_start INTEGER,
                   service_type INTEGER, service_group TEXT, service_control_set TEXT, UNIQUE(host, path));
CREATE INDEX files_content ON files(content);
CREATE INDEX files_stem ON files(stem);
CREATE INDEX files_errors ON files(kind) WHERE kind = 'error';
CREATE TABLE missing_services(host INTEGER NOT NULL REFERENCES hosts(id), root TEXT NOT NULL,
                              expected_path TEXT NOT NULL, service_name TEXT NOT NULL, service_display_name TEXT,
                              service_image_path TEXT, service_start INTEGER, service_type INTEGER,
                              service_group TEXT, service_control_set TEXT);
)sql";

// Schema 1 -> 2: the service of each file, and the missing driver services of each host (Windows roots and
// disk images are indexed from schema 2 on).
constexpr const char* kSchema1To2 = R"sql(
ALTER TABLE files ADD COLUMN service_name TEXT;
ALTER TABLE files ADD COLUMN service_display_name TEXT;
ALTER TABLE files ADD COLUMN service_image_path TEXT;
ALTER TABLE files ADD COLUMN service_start INTEGER;
ALTER TABLE files ADD COLUMN service_type INTEGER;
ALTER TABLE files ADD COLUMN service_group TEXT;
ALTER TABLE files ADD COLUMN service_control_set TEXT;
CREATE TABLE missing_services(host INTEGER NOT NULL REFERENCES hosts(id), root TEXT NOT NULL,
                              expected_path TEXT NOT NULL, service_name TEXT NOT NULL, service_display_name TEXT,
                              service_image_path TEXT, service_start INTEGER, service_type INTEGER,
                              service_group TEXT, service_control_set TEXT);
PRAGMA user_version = 2;
)sql";

const char* const kTables[] = {"meta", "hosts", "roots", "tagsets", "tagset_tags", "contents", "files", "findings",
                               "missing_services"};

std::string busy_message(const std::string& path) {
  return path + ": the index is being written by another tagwho process (waited for it; try again when it has finished)";
}

}  // namespace

std::string default_index_path() {
  const char* cache = std::getenv("XDG_CACHE_HOME");
  if (cache && *cache) return std::string(cache) + "/tagwho/index.db";
  const char* home = std::getenv("HOME");
  if (home && *home) return std::string(home) + "/.cache/tagwho/index.db";
  return "";
}

std::string local_host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0 || !name[0]) return "localhost";
  return name;
}

Index::Index() : state_(std::make_unique<State>()) {}
Index::Index(Index&&) noexcept = default;
Index& Index::operator=(Index&&) noexcept = default;
Index::~Index() = default;
const std::string& Index::path() const { return state_->path; }

Result<Index> Index::open(const std::string& path, bool create, int busy_timeout_ms) {
  struct stat info {};
  bool exists = ::stat(path.c_str(), &info) == 0;
  if (exists && !S_ISREG(info.st_mode)) return Error{path + ": not a regular file: not used as an index"};
  if (!exists && !create) return Error{path + ": no index here (build one with: tagwho index build --index " + path + " PATH...)"};
  if (exists && info.st_size > 0) {
    // Check the file's first bytes before SQLite sees it: anything else is not ours to touch.
    char header[16] = {};
    std::ifstream in(path, std::ios::binary);
    in.read(header, sizeof header);
    if (in.gcount() < 16 || std::string(header, 16) != std::string("SQLite format 3\0", 16))
      return Error{path + ": not a tagwho index (not an SQLite database); left untouched"};
  }
  if (!exists) {
    std::error_code error;
    std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, error);
  }
  Index index;
  index.state_->path = path;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &index.state_->db, flags, nullptr);
  if (rc != SQLITE_OK && !create) {
    // A read-only file (or folder) can still be queried.
    sqlite3_close_v2(index.state_->db);
    index.state_->db = nullptr;
    rc = sqlite3_open_v2(path.c_str(), &index.state_->db, SQLITE_OPEN_READONLY, nullptr);
  }
  sqlite3* db = index.state_->db;
  if (rc != SQLITE_OK) return Error{path + ": cannot open the index: " + (db ? sqlite3_errmsg(db) : "out of memory")};
  sqlite3_busy_timeout(db, busy_timeout_ms);
  try {
    int64_t application_id = sql::scalar(db, "PRAGMA application_id");
    int64_t user_version = sql::scalar(db, "PRAGMA user_version");
    int64_t objects = sql::scalar(db, "SELECT count(*) FROM sqlite_master");
    if (application_id == 0 && user_version == 0 && objects == 0) {
      if (!create) return Error{path + ": an empty database, not a tagwho index (build one with tagwho index build)"};
      // A new (or empty) file: lay the schema down in one transaction, so a kill leaves it empty again.
      // Pages of 16 KB, not SQLite's 4 KB: an index build writes its findings through the WAL and reads
      // spilled pages back, a quarter of the calls for the same bytes, and a page holds blobs of up to 4 KB
      // inline, not 1 KB (bench index build: 6.09 -> 5.72 s over 5 alternating runs, sys 1.18 -> 0.92 s;
      // file 91 -> 64 MB; the build's peak memory 5-10 MB more, 242-244 MB). Queries take the same time. An
      // existing index keeps the page size it was made with.
      sql::exec(db, "PRAGMA page_size = 16384");
      sql::exec(db, "PRAGMA journal_mode = WAL");
      write_transaction(db, [&] {
        if (sql::scalar(db, "SELECT count(*) FROM sqlite_master") != 0) return;  // another process won the race
        sql::exec(db, kSchema);
        sql::exec(db, kFindingsSchema);
        sql::exec(db, ("PRAGMA application_id = " + std::to_string(kIndexApplicationId)).c_str());
        sql::exec(db, ("PRAGMA user_version = " + std::to_string(kIndexSchemaVersion)).c_str());
        set_meta(db, "analysis_version", std::to_string(kIndexAnalysisVersion));
        set_meta(db, "tagwho_version", TAGWHO_VERSION);
        set_meta(db, "created_at", std::to_string(now_seconds()));
        set_meta(db, "updated_at", "0");
      });
      application_id = sql::scalar(db, "PRAGMA application_id");
      user_version = sql::scalar(db, "PRAGMA user_version");
    }
    if (application_id != kIndexApplicationId)
      return Error{path + ": an SQLite database that is not a tagwho index (application_id " +
                   std::to_string(application_id) + "); left untouched"};
    if (user_version > kIndexSchemaVersion)
      return Error{path + ": index schema " + std::to_string(user_version) + " is newer than this tagwho reads (" +
                   std::to_string(kIndexSchemaVersion) + "); left untouched"};
    if (user_version >= 1 && user_version < kIndexSchemaVersion && application_id == kIndexApplicationId &&
        !sqlite3_db_readonly(db, "main")) {
      // Our own older layout: upgraded in place, in one transaction (a kill leaves it as it was).
      write_transaction(db, [&] {
        if (sql::scalar(db, "PRAGMA user_version") == 1) sql::exec(db, kSchema1To2);
        if (sql::scalar(db, "PRAGMA user_version") == 2) upgrade_evidence_to_blobs(db);
        if (sql::scalar(db, "PRAGMA user_version") == 3) upgrade_findings_to_content_key(db);
        if (sql::scalar(db, "PRAGMA user_version") == 4) upgrade_evidence_texts_once(db);
      });
      user_version = sql::scalar(db, "PRAGMA user_version");
    }
    if (user_version < kIndexSchemaVersion)
      return Error{path + ": index schema " + std::to_string(user_version) +
                   " is older than this tagwho's (open it once with write access to upgrade it, or build a new"
                   " index with --index NEWFILE)"};
    for (const char* table : kTables) {
      sql::Statement s(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?");
      s.bind(1, table);
      if (!s.step() || s.i64(0) != 1) return Error{path + ": damaged tagwho index (table " + table + " missing); left untouched"};
    }
    if (!sqlite3_db_readonly(db, "main")) sql::exec(db, "PRAGMA journal_mode = WAL");
    sql::exec(db, "PRAGMA synchronous = NORMAL");
    sql::exec(db, "PRAGMA foreign_keys = OFF");
  } catch (const sql::Failure& failure) {
    if ((failure.code & 0xff) == SQLITE_BUSY) return Error{busy_message(path)};
    if ((failure.code & 0xff) == SQLITE_NOTADB) return Error{path + ": not a tagwho index (not an SQLite database); left untouched"};
    return Error{path + ": unusable index: " + failure.what() + "; left untouched"};
  }
  return index;
}

size_t Index::host_count() {
  try {
    return static_cast<size_t>(sql::scalar(state_->db, "SELECT count(*) FROM hosts h WHERE EXISTS (SELECT 1 FROM files f WHERE f.host = h.id)"));
  } catch (const sql::Failure&) {
    return 0;
  }
}

Result<IndexStats> Index::stats() {
  sqlite3* db = state_->db;
  IndexStats stats;
  try {
    sql::exec(db, "BEGIN");  // one snapshot
    stats.path = state_->path;
    stats.schema_version = static_cast<int>(sql::scalar(db, "PRAGMA user_version"));
    stats.analysis_version = std::atoi(meta(db, "analysis_version").c_str());
    stats.database_bytes = static_cast<uint64_t>(sql::scalar(db, "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size"));
    stats.files = static_cast<size_t>(sql::scalar(db, "SELECT count(*) FROM files"));
    stats.pe_files = static_cast<size_t>(sql::scalar(db, "SELECT count(*) FROM files WHERE kind = 'pe'"));
    stats.not_pe = static_cast<size_t>(sql::scalar(db, "SELECT count(*) FROM files WHERE kind = 'not_pe'"));
    stats.error_files = static_cast<size_t>(sql::scalar(db,
        "SELECT (SELECT count(*) FROM files WHERE kind = 'error') + "
        "(SELECT count(*) FROM files f JOIN contents c ON c.id = f.content WHERE c.errors <> '')"));
    stats.contents = static_cast<size_t>(sql::scalar(db, "SELECT count(*) FROM contents"));
    stats.distinct_tags = static_cast<size_t>(sql::scalar(db,
        "SELECT count(DISTINCT tag) FROM findings WHERE confidence IN ('call', 'wrapper')"));
    // Tags every content's literal set holds (merged indexes: the sets of several builds).
    stats.literal_tags = static_cast<size_t>(sql::scalar(db,
        "SELECT count(*) FROM (SELECT tag FROM tagset_tags WHERE tagset IN (SELECT DISTINCT tagset FROM contents)"
        " GROUP BY tag HAVING count(*) = (SELECT count(DISTINCT tagset) FROM contents))"));
    stats.total_bytes = static_cast<uint64_t>(sql::scalar(db, "SELECT coalesce(sum(size), 0) FROM files"));
    {
      sql::Statement s(db, "SELECT coalesce(c.machine, f.kind), count(*) FROM files f LEFT JOIN contents c ON c.id = f.content"
                           " GROUP BY 1 ORDER BY 2 DESC, 1");
      while (s.step()) stats.machines.emplace_back(s.text(0), static_cast<size_t>(s.i64(1)));
    }
    {
      sql::Statement s(db, "SELECT h.id, h.name, h.indexed_at, (SELECT count(*) FROM files f WHERE f.host = h.id)"
                           " FROM hosts h ORDER BY h.name");
      while (s.step()) {
        IndexStats::Host host;
        host.name = s.text(1);
        host.indexed_at = s.i64(2);
        host.files = static_cast<size_t>(s.i64(3));
        sql::Statement r(db, "SELECT path FROM roots WHERE host = ? ORDER BY path");
        r.bind(1, s.i64(0));
        while (r.step()) host.roots.push_back(r.text(0));
        stats.hosts.push_back(std::move(host));
      }
    }
    stats.created_at = std::atoll(meta(db, "created_at").c_str());
    stats.updated_at = std::atoll(meta(db, "updated_at").c_str());
    sql::exec(db, "COMMIT");
  } catch (const sql::Failure& failure) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return Error{state_->path + ": " + failure.what()};
  }
  return stats;
}

Result<size_t> Index::merge_from(const std::vector<std::string>& inputs) {
  sqlite3* db = state_->db;
  size_t merged = 0;
  for (const std::string& input : inputs) {
    // Validated as an index first (never created, never written).
    auto source = Index::open(input, false);
    if (!source) return Error{source.error()};
    std::string source_path = source->path();
    if (absolute_path(source_path) == absolute_path(state_->path)) return Error{input + ": is the output index itself"};
    try {
      std::string version = meta(source->state_->db, "analysis_version");
      source = Error{""};  // close it before attaching
      sql::Statement attach(db, "ATTACH DATABASE ? AS src");
      attach.bind(1, source_path).run();
      try {
        write_transaction(db, [&] {
          bool empty = sql::scalar(db, "SELECT count(*) FROM files") == 0;
          if (version != meta(db, "analysis_version")) {
            if (!empty) throw sql::Failure(input + ": built by analysis version " + version + ", this index holds version " +
                                           meta(db, "analysis_version") + " (update both with the same tagwho first)", 0);
            set_meta(db, "analysis_version", version);
          }
          int64_t tagset_offset = sql::scalar(db, "SELECT coalesce(max(id), 0) FROM main.tagsets");
          int64_t last_content = sql::scalar(db, "SELECT coalesce(max(id), 0) FROM main.contents");
          std::string off = std::to_string(tagset_offset);
          const std::string services = kServiceColumns;
          sql::exec(db, ("INSERT INTO main.tagsets(id, tag_count) SELECT id + " + off + ", tag_count FROM src.tagsets;"
                         "INSERT INTO main.tagset_tags(tagset, tag) SELECT tagset + " + off + ", tag FROM src.tagset_tags;")
                            .c_str());
          sql::exec(db, ("INSERT INTO main.contents(hash, size, machine, parsed, company, description, file_version,"
                         " product_name, original_filename, errors, tagset, analysed_at)"
                         " SELECT hash, size, machine, parsed, company, description, file_version, product_name,"
                         " original_filename, errors, tagset + " + off + ", analysed_at FROM src.contents s"
                         " WHERE NOT EXISTS (SELECT 1 FROM main.contents m WHERE m.hash = s.hash AND m.size = s.size);")
                            .c_str());
          sql::exec(db, ("DROP TABLE IF EXISTS temp.cmap; DROP TABLE IF EXISTS temp.hmap;"
                         "CREATE TEMP TABLE cmap AS SELECT s.id AS src, m.id AS dst, m.id > " + std::to_string(last_content) +
                         " AS copied FROM src.contents s JOIN main.contents m ON m.hash = s.hash AND m.size = s.size;"
                         "CREATE INDEX temp.cmap_src ON cmap(src);"
                         "INSERT OR IGNORE INTO main.hosts(name, indexed_at) SELECT name, indexed_at FROM src.hosts;"
                         "UPDATE main.hosts SET indexed_at = (SELECT s.indexed_at FROM src.hosts s WHERE s.name = main.hosts.name)"
                         " WHERE name IN (SELECT name FROM src.hosts);"
                         "CREATE TEMP TABLE hmap AS SELECT s.id AS src, m.id AS dst FROM src.hosts s JOIN main.hosts m ON m.name = s.name;"
                         "INSERT INTO main.findings SELECT f.tag, c.dst, f.tag_text, f.confidence, f.evidence_count,"
                         " f.evidence FROM src.findings f JOIN cmap c ON c.src = f.content WHERE c.copied;"
                         "DELETE FROM main.files WHERE host IN (SELECT dst FROM hmap);"
                         "DELETE FROM main.roots WHERE host IN (SELECT dst FROM hmap);"
                         "INSERT INTO main.roots(host, path) SELECT h.dst, r.path FROM src.roots r JOIN hmap h ON h.src = r.host;"
                         "INSERT INTO main.files(host, path, stem, size, mtime_ns, kind, content, error, " + services + ")"
                         " SELECT h.dst, f.path, f.stem, f.size, f.mtime_ns, f.kind, c.dst, f.error, " + services +
                         " FROM src.files f JOIN hmap h ON h.src = f.host LEFT JOIN cmap c ON c.src = f.content;"
                         "DELETE FROM main.missing_services WHERE host IN (SELECT dst FROM hmap);"
                         "INSERT INTO main.missing_services(host, root, expected_path, " + services + ")"
                         " SELECT h.dst, m.root, m.expected_path, " + services +
                         " FROM src.missing_services m JOIN hmap h ON h.src = m.host;")
                            .c_str());
          merged += static_cast<size_t>(sql::scalar(db, "SELECT count(*) FROM src.files"));
          collect_garbage(db);
          set_meta(db, "updated_at", std::to_string(now_seconds()));
        });
      } catch (...) {
        sqlite3_exec(db, "DETACH DATABASE src", nullptr, nullptr, nullptr);
        throw;
      }
      sql::exec(db, "DETACH DATABASE src");
    } catch (const sql::Failure& failure) {
      if ((failure.code & 0xff) == SQLITE_BUSY) return Error{busy_message(state_->path)};
      return Error{failure.code ? state_->path + ": " + failure.what() : std::string(failure.what())};
    }
  }
  return merged;
}

}  // namespace tagwho
