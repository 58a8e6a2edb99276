#include "index/store.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace tagwho {
namespace index_detail {

namespace fs = std::filesystem;

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string hex64(uint64_t value) {
  char buffer[20];
  std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(value));
  return buffer;
}

std::string absolute_path(const std::string& path) {
  std::error_code error;
  fs::path absolute = fs::absolute(fs::path(path), error);
  if (error) absolute = fs::path(path);
  std::string text = absolute.lexically_normal().string();
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  return text;
}

std::string stem_key(const std::string& path) {
  std::string stem = fs::path(path).stem().string();
  for (char& c : stem) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return stem;
}

bool path_less(const std::string& a, const std::string& b) { return fs::path(a) < fs::path(b); }

bool under_root(const std::string& path, const std::string& root) {
  if (root == "/") return !path.empty() && path[0] == '/';
  return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 && path[root.size()] == '/');
}

bool inside_image(const std::string& path, const std::string& image) {
  return path.size() > image.size() + 1 && path.compare(0, image.size(), image) == 0 && path[image.size()] == ':';
}

Machine machine_from_name(const std::string& name) {
  for (Machine m : {Machine::x86, Machine::x64, Machine::arm64, Machine::ia64})
    if (name == machine_name(m)) return m;
  return Machine::other;
}

Confidence confidence_from_name(const std::string& name) {
  for (Confidence c : {Confidence::data, Confidence::code, Confidence::wrapper, Confidence::call})
    if (name == confidence_name(c)) return c;
  return Confidence::raw;
}

CallForm form_from_name(const std::string& name) {
  for (CallForm f : {CallForm::iat, CallForm::reg, CallForm::thunk, CallForm::tail, CallForm::direct, CallForm::direct_tail})
    if (name == call_form_name(f)) return f;
  return CallForm::none;
}

void write_transaction(sqlite3* db, const std::function<void()>& body) {
  sql::exec(db, "BEGIN IMMEDIATE");
  try {
    body();
    sql::exec(db, "COMMIT");
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

int64_t host_id(sqlite3* db, const std::string& name, bool create) {
  sql::Statement find(db, "SELECT id FROM hosts WHERE name = ?");
  find.bind(1, name);
  if (find.step()) return find.i64(0);
  if (!create) return 0;
  sql::Statement insert(db, "INSERT INTO hosts(name, indexed_at) VALUES (?, 0)");
  insert.bind(1, name).run();
  return sqlite3_last_insert_rowid(db);
}

std::vector<std::string> host_roots(sqlite3* db, int64_t host) {
  std::vector<std::string> roots;
  sql::Statement s(db, "SELECT path FROM roots WHERE host = ? ORDER BY rowid");
  s.bind(1, host);
  while (s.step()) roots.push_back(s.text(0));
  return roots;
}

std::set<uint32_t> tagset_tags(sqlite3* db, int64_t tagset) {
  std::set<uint32_t> tags;
  sql::Statement s(db, "SELECT tag FROM tagset_tags WHERE tagset = ?");
  s.bind(1, tagset);
  while (s.step()) tags.insert(static_cast<uint32_t>(s.i64(0)));
  return tags;
}

int64_t make_tagset(sqlite3* db, const std::set<uint32_t>& tags) {
  sql::Statement insert(db, "INSERT INTO tagsets(tag_count) VALUES (?)");
  insert.bind(1, tags.size()).run();
  int64_t id = sqlite3_last_insert_rowid(db);
  sql::Statement add(db, "INSERT INTO tagset_tags(tagset, tag) VALUES (?, ?)");
  for (uint32_t tag : tags) add.bind(1, id).bind(2, tag).run();
  return id;
}

std::string meta(sqlite3* db, const std::string& key) {
  sql::Statement s(db, "SELECT value FROM meta WHERE key = ?");
  s.bind(1, key);
  return s.step() ? s.text(0) : std::string();
}

void set_meta(sqlite3* db, const std::string& key, const std::string& value) {
  sql::Statement s(db, "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  s.bind(1, key).bind(2, value).run();
}

namespace {

std::string join_lines(const std::vector<std::string>& lines, const char* separator) {
  std::string text;
  for (size_t i = 0; i < lines.size(); ++i) text += (i ? separator : "") + lines[i];
  return text;
}

std::vector<std::string> split(const std::string& text, const std::string& separator) {
  std::vector<std::string> parts;
  if (text.empty()) return parts;
  size_t start = 0;
  for (;;) {
    size_t at = text.find(separator, start);
    parts.push_back(text.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) break;
    start = at + separator.size();
  }
  return parts;
}

namespace {

// Inserts the findings `keep` accepts.
template <typename Keep>
void insert_findings_if(sqlite3* db, int64_t content, const std::vector<Finding>& findings, Keep keep) {
  sql::Statement finding_row(db,
      "INSERT INTO findings(tag, content, tag_text, confidence, evidence_count) VALUES (?, ?, ?, ?, ?)");
  sql::Statement evidence_row(db,
      "INSERT INTO evidence(tag, content, seq, kind, api, rva, file_offset, section, form, negative_displacement,"
      " tag_rva, pool_type, pool_flags, size, protected, detail, chain) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  for (const Finding& finding : findings) {
    if (!keep(finding)) continue;
    finding_row.bind(1, finding.tag.value).bind(2, content).bind(3, finding.tag.display())
        .bind(4, confidence_name(finding.best)).bind(5, finding.evidence.size()).run();
    for (size_t seq = 0; seq < finding.evidence.size(); ++seq) {
      const Evidence& e = finding.evidence[seq];
      evidence_row.bind(1, finding.tag.value).bind(2, content).bind(3, seq).bind(4, confidence_name(e.kind));
      if (e.api.empty()) evidence_row.bind_null(5); else evidence_row.bind(5, e.api);
      evidence_row.bind(6, e.rva).bind(7, e.file_offset).bind(8, e.section);
      if (e.form == CallForm::none) evidence_row.bind_null(9); else evidence_row.bind(9, call_form_name(e.form));
      evidence_row.bind(10, e.negative_displacement);
      if (e.kind == Confidence::call || e.kind == Confidence::wrapper) evidence_row.bind(11, e.tag_rva);
      else evidence_row.bind_null(11);
      evidence_row.bind(12, e.pool_type).bind(13, e.pool_flags).bind(14, e.size).bind(15, e.protected_pool)
          .bind(16, e.detail).bind(17, join_lines(e.chain, " -> "));
      // The stored tag of an item is its own (with the protected bit when the code had it).
      evidence_row.run();
    }
  }
}

}  // namespace

void insert_findings(sqlite3* db, int64_t content, const std::vector<Finding>& findings) {
  insert_findings_if(db, content, findings, [](const Finding&) { return true; });
}

Evidence evidence_from_row(const sql::Statement& s, int first, Tag tag) {
  Evidence e;
  e.tag = tag;
  e.kind = confidence_from_name(s.text(first));
  e.api = s.text(first + 1);
  e.rva = static_cast<uint32_t>(s.i64(first + 2));
  if (auto v = s.opt_i64(first + 3)) e.file_offset = static_cast<uint64_t>(*v);
  e.section = s.text(first + 4);
  e.form = form_from_name(s.text(first + 5));
  e.negative_displacement = s.i64(first + 6) != 0;
  e.tag_rva = static_cast<uint32_t>(s.opt_i64(first + 7).value_or(0));
  if (auto v = s.opt_i64(first + 8)) e.pool_type = static_cast<uint64_t>(*v);
  e.pool_flags = s.i64(first + 9) != 0;
  if (auto v = s.opt_i64(first + 10)) e.size = static_cast<uint64_t>(*v);
  e.protected_pool = s.i64(first + 11) != 0;
  e.detail = s.text(first + 12);
  e.chain = split(s.text(first + 13), " -> ");
  return e;
}

constexpr const char* kEvidenceColumns =
    "kind, api, rva, file_offset, section, form, negative_displacement, tag_rva, pool_type, pool_flags, size,"
    " protected, detail, chain";

}  // namespace

int64_t insert_content(sqlite3* db, const std::string& hash, const DriverReport& report, int64_t tagset) {
  sql::Statement s(db,
      "INSERT INTO contents(hash, size, machine, parsed, company, description, file_version, product_name,"
      " original_filename, errors, tagset, analysed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
  s.bind(1, hash).bind(2, report.size).bind(3, machine_name(report.machine)).bind(4, report.parsed)
      .bind(5, report.version.company).bind(6, report.version.description).bind(7, report.version.file_version)
      .bind(8, report.version.product_name).bind(9, report.version.original_filename)
      .bind(10, join_lines(report.errors, "\n")).bind(11, tagset).bind(12, now_seconds()).run();
  int64_t id = sqlite3_last_insert_rowid(db);
  insert_findings(db, id, report.findings);
  return id;
}

void replace_findings(sqlite3* db, int64_t content, const std::vector<Finding>& findings,
                      const std::vector<uint32_t>& tags) {
  if (tags.empty()) return;
  const auto listed = [&](uint32_t tag) { return std::binary_search(tags.begin(), tags.end(), tag); };
  // Only the tags the content has rows for are deleted: `tags` can be every tag proven in the index.
  std::vector<uint32_t> stored;
  {
    sql::Statement s(db, "SELECT tag FROM findings WHERE content = ? AND tag BETWEEN ? AND ?");
    s.bind(1, content).bind(2, tags.front()).bind(3, tags.back());
    while (s.step())
      if (listed(static_cast<uint32_t>(s.i64(0)))) stored.push_back(static_cast<uint32_t>(s.i64(0)));
  }
  sql::Statement drop_findings(db, "DELETE FROM findings WHERE tag = ? AND content = ?");
  sql::Statement drop_evidence(db, "DELETE FROM evidence WHERE tag = ? AND content = ?");
  for (uint32_t tag : stored) {
    drop_findings.bind(1, tag).bind(2, content).run();
    drop_evidence.bind(1, tag).bind(2, content).run();
  }
  insert_findings_if(db, content, findings, [&](const Finding& f) { return listed(f.tag.value); });
}

std::optional<Finding> read_finding(sqlite3* db, int64_t content, Tag tag) {
  sql::Statement s(db, std::string("SELECT ") + kEvidenceColumns +
                           " FROM evidence WHERE tag = ? AND content = ? ORDER BY seq");
  s.bind(1, tag.value).bind(2, content);
  Finding finding;
  finding.tag = tag;
  while (s.step()) {
    finding.evidence.push_back(evidence_from_row(s, 0, tag));
    finding.best = std::max(finding.best, finding.evidence.back().kind);
  }
  if (finding.evidence.empty()) return std::nullopt;
  // The evidence's own tag value may have carried the protected bit; the report shows the plain tag.
  return finding;
}

std::vector<Evidence> read_call_evidence(sqlite3* db, int64_t content, uint32_t first, uint32_t last) {
  sql::Statement s(db, std::string("SELECT tag, ") + kEvidenceColumns +
                           " FROM evidence WHERE content = ? AND tag BETWEEN ? AND ? AND kind IN ('call', 'wrapper')"
                           " ORDER BY tag, seq");
  s.bind(1, content).bind(2, first).bind(3, last);
  std::vector<Evidence> evidence;
  while (s.step()) evidence.push_back(evidence_from_row(s, 1, Tag{static_cast<uint32_t>(s.i64(0))}));
  return evidence;
}

DriverReport read_content(sqlite3* db, int64_t content) {
  sql::Statement s(db,
      "SELECT size, machine, parsed, company, description, file_version, product_name, original_filename, errors"
      " FROM contents WHERE id = ?");
  s.bind(1, content);
  DriverReport report;
  if (!s.step()) return report;
  report.size = static_cast<uint64_t>(s.i64(0));
  report.machine = machine_from_name(s.text(1));
  report.parsed = s.i64(2) != 0;
  report.version.company = s.text(3);
  report.version.description = s.text(4);
  report.version.file_version = s.text(5);
  report.version.product_name = s.text(6);
  report.version.original_filename = s.text(7);
  report.errors = split(s.text(8), "\n");
  return report;
}

void collect_garbage(sqlite3* db) {
  sql::exec(db,
            "CREATE TEMP TABLE IF NOT EXISTS orphan(id INTEGER PRIMARY KEY);"
            "DELETE FROM temp.orphan;"
            "INSERT INTO temp.orphan SELECT id FROM contents c WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.content = c.id);"
            "DELETE FROM findings WHERE content IN (SELECT id FROM temp.orphan);"
            "DELETE FROM evidence WHERE content IN (SELECT id FROM temp.orphan);"
            "DELETE FROM contents WHERE id IN (SELECT id FROM temp.orphan);"
            "DELETE FROM tagset_tags WHERE tagset NOT IN (SELECT tagset FROM contents WHERE tagset IS NOT NULL)"
            "  AND tagset NOT IN (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'literal_tagset');"
            "DELETE FROM tagsets WHERE id NOT IN (SELECT tagset FROM contents WHERE tagset IS NOT NULL)"
            "  AND id NOT IN (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'literal_tagset');"
            "DELETE FROM roots WHERE host NOT IN (SELECT id FROM hosts);");
}

}  // namespace index_detail
}  // namespace tagwho
