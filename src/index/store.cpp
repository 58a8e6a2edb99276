#include "index/store.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <optional>
#include <string_view>

#include "core/format.hpp"
#include "scan/analyse.hpp"

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

// --- Evidence, stored as one blob per finding --------------------------------------------------------------
// A finding's evidence items, strongest first, each:
//   kind (u8: Confidence), flags (u8), more flags (u8), rva (varint), then what the flags say is there:
//   file_offset (varint), section, api (texts), form (u8: CallForm), tag_rva, pool_type, size (varints),
//   detail (a text, or for "immediate of MNEMONIC at 0xADDRESS": the mnemonic as a text, then rva -
//   ADDRESS as a varint), chain (varint count, strings: varint length, bytes).
// A text is a string (varint length, bytes) the first time the blob holds it, and after that the number of
// that first time (varint: the blob's strings counted in the order they come) with the field's ref flag.
// One row per finding instead of one per item: the index's rows are a twentieth, and building it a third
// faster (the bench corpus: 3.3 million items in 190,000 findings). Schema 5's texts and immediate details
// took the bench index's evidence from 109.5 to 45.8 MB (the section, the API name and the detail were most
// of an item), its file from 199 to 64 MB, and its build from 6.47 to 5.95 s.

enum : uint8_t {
  kHasApi = 1, kHasFileOffset = 2, kHasForm = 4, kNegative = 8, kHasTagRva = 16, kHasPoolType = 32, kPoolFlags = 64,
  kHasSize = 128,
};
enum : uint8_t {
  kProtected = 1, kHasDetail = 2, kHasChain = 4, kHasSection = 8,
  kSectionRef = 16, kApiRef = 32, kDetailRef = 64, kDetailImmediate = 128,  // schema 5
};
constexpr std::string_view kImmediateOf = "immediate of ";  // what classification writes (classify.cpp)
constexpr std::string_view kImmediateAt = " at ";

// The mnemonic and address of a detail "immediate of MNEMONIC at 0xADDRESS" exactly as hex() writes it,
// at or below rva (the hit lies in the instruction's immediate); nullopt for any other detail.
std::optional<std::pair<std::string_view, uint32_t>> immediate_detail(std::string_view detail, uint32_t rva) {
  if (!detail.starts_with(kImmediateOf)) return std::nullopt;
  const size_t at = detail.rfind(kImmediateAt);
  if (at == std::string_view::npos || at <= kImmediateOf.size()) return std::nullopt;
  const std::string_view mnemonic = detail.substr(kImmediateOf.size(), at - kImmediateOf.size());
  const std::string_view address = detail.substr(at + kImmediateAt.size());
  uint64_t value = 0;
  if (address.size() < 3 || address.size() > 10 || !address.starts_with("0x")) return std::nullopt;
  for (const char c : address.substr(2)) {
    const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (digit < 0) return std::nullopt;
    value = value * 16 + static_cast<uint64_t>(digit);
  }
  if (value > rva || hex(value) != address) return std::nullopt;  // (no leading zeros, lower case)
  return std::pair{mnemonic, static_cast<uint32_t>(value)};
}

std::string immediate_detail_text(std::string_view mnemonic, uint32_t address) {
  return std::string(kImmediateOf) + std::string(mnemonic) + std::string(kImmediateAt) + hex(address);
}

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

void put_string(std::string& out, const std::string& text) {
  put_varint(out, text.size());
  out += text;
}

// Reads a blob, refusing anything out of bounds or out of range: a damaged index is an error, not a crash.
class BlobReader {
 public:
  explicit BlobReader(const std::string& bytes) : bytes_(bytes) {}
  bool done() const { return at_ == bytes_.size(); }
  uint8_t u8() {
    if (at_ >= bytes_.size()) fail();
    return static_cast<uint8_t>(bytes_[at_++]);
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const uint8_t b = u8();
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail();
  }
  std::string text() {
    const uint64_t n = varint();
    if (n > bytes_.size() - at_) fail();
    std::string out = bytes_.substr(at_, n);
    at_ += n;
    return out;
  }
  [[noreturn]] static void fail() { throw sql::Failure("damaged tagwho index: stored evidence does not decode", SQLITE_CORRUPT); }

 private:
  const std::string& bytes_;
  size_t at_ = 0;
};

}  // namespace

std::string encode_evidence(const std::vector<Evidence>& items, bool texts_once) {
  std::string out;
  out.reserve(items.size() * 16);
  std::vector<std::string_view> texts;  // the blob's strings so far, in order (texts_once)
  // Writes a text into `into`, as a number with ref_flag set in `more` when the blob holds it already.
  const auto put_text = [&](std::string& into, std::string_view text, uint8_t& more, uint8_t ref_flag) {
    if (texts_once) {
      const auto known = std::find(texts.begin(), texts.end(), text);  // (a handful: sections, APIs, mnemonics)
      if (known != texts.end()) {
        more |= ref_flag;
        put_varint(into, static_cast<uint64_t>(known - texts.begin()));
        return;
      }
      texts.push_back(text);
    }
    put_varint(into, text.size());
    into += text;
  };
  std::string fields;  // an item's fields after its flags, which the texts' ref flags complete
  for (const Evidence& e : items) {
    const bool call = e.kind == Confidence::call || e.kind == Confidence::wrapper;
    uint8_t flags = 0, more = 0;
    if (!e.api.empty()) flags |= kHasApi;
    if (e.file_offset) flags |= kHasFileOffset;
    if (e.form != CallForm::none) flags |= kHasForm;
    if (e.negative_displacement) flags |= kNegative;
    if (call) flags |= kHasTagRva;
    if (e.pool_type) flags |= kHasPoolType;
    if (e.pool_flags) flags |= kPoolFlags;
    if (e.size) flags |= kHasSize;
    if (e.protected_pool) more |= kProtected;
    if (!e.detail.empty()) more |= kHasDetail;
    if (!e.chain.empty()) more |= kHasChain;
    if (!e.section.empty()) more |= kHasSection;
    fields.clear();
    put_varint(fields, e.rva);
    if (e.file_offset) put_varint(fields, *e.file_offset);
    if (more & kHasSection) put_text(fields, e.section, more, kSectionRef);
    if (flags & kHasApi) put_text(fields, e.api, more, kApiRef);
    if (flags & kHasForm) fields += static_cast<char>(e.form);
    if (call) put_varint(fields, e.tag_rva);
    if (e.pool_type) put_varint(fields, *e.pool_type);
    if (e.size) put_varint(fields, *e.size);
    if (more & kHasDetail) {
      if (const auto immediate = texts_once ? immediate_detail(e.detail, e.rva) : std::nullopt) {
        more |= kDetailImmediate;
        put_text(fields, immediate->first, more, kDetailRef);
        put_varint(fields, e.rva - immediate->second);
      } else {
        put_text(fields, e.detail, more, kDetailRef);
      }
    }
    if (more & kHasChain) {
      put_varint(fields, e.chain.size());
      for (const std::string& link : e.chain) put_string(fields, link);
    }
    out += static_cast<char>(e.kind);
    out += static_cast<char>(flags);
    out += static_cast<char>(more);
    out += fields;
  }
  return out;
}

std::vector<Evidence> decode_evidence(const std::string& blob, Tag tag) {
  std::vector<Evidence> items;
  BlobReader in(blob);
  std::vector<std::string> texts;  // the blob's strings so far, in order (see encode_evidence)
  // The bytes the texts' numbers stand for: a blob tagwho wrote expands a few times at most (an item of a
  // dozen bytes names an API); a damaged or crafted one whose every byte names a long text is refused
  // before it fills the memory.
  uint64_t expanded = 0;
  const uint64_t expansion_limit = 16 * uint64_t{blob.size()} + 65536;
  const auto text = [&](uint8_t more, uint8_t ref_flag) -> std::string {
    if (more & ref_flag) {
      const uint64_t number = in.varint();
      if (number >= texts.size()) BlobReader::fail();
      expanded += texts[number].size();
      if (expanded > expansion_limit) BlobReader::fail();
      return texts[number];
    }
    texts.push_back(in.text());
    return texts.back();
  };
  while (!in.done()) {
    Evidence e;
    e.tag = tag;
    const uint8_t kind = in.u8();
    if (kind > static_cast<uint8_t>(Confidence::call)) BlobReader::fail();
    e.kind = static_cast<Confidence>(kind);
    const uint8_t flags = in.u8(), more = in.u8();
    // A text's ref flag without its field: not a blob tagwho wrote.
    if (((more & kSectionRef) && !(more & kHasSection)) || ((more & kApiRef) && !(flags & kHasApi)) ||
        ((more & (kDetailRef | kDetailImmediate)) && !(more & kHasDetail)))
      BlobReader::fail();
    const uint64_t rva = in.varint();
    if (rva > UINT32_MAX) BlobReader::fail();
    e.rva = static_cast<uint32_t>(rva);
    if (flags & kHasFileOffset) e.file_offset = in.varint();
    if (more & kHasSection) e.section = text(more, kSectionRef);
    if (flags & kHasApi) e.api = text(more, kApiRef);
    if (flags & kHasForm) {
      const uint8_t form = in.u8();
      if (form > static_cast<uint8_t>(CallForm::direct_tail)) BlobReader::fail();
      e.form = static_cast<CallForm>(form);
    }
    e.negative_displacement = flags & kNegative;
    if (flags & kHasTagRva) {
      const uint64_t tag_rva = in.varint();
      if (tag_rva > UINT32_MAX) BlobReader::fail();
      e.tag_rva = static_cast<uint32_t>(tag_rva);
    }
    if (flags & kHasPoolType) e.pool_type = in.varint();
    e.pool_flags = flags & kPoolFlags;
    if (flags & kHasSize) e.size = in.varint();
    e.protected_pool = more & kProtected;
    if (more & kHasDetail) {
      e.detail = text(more, kDetailRef);
      if (more & kDetailImmediate) {
        const uint64_t below = in.varint();
        if (below > e.rva) BlobReader::fail();
        e.detail = immediate_detail_text(e.detail, e.rva - static_cast<uint32_t>(below));
      }
    }
    if (more & kHasChain) {
      const uint64_t links = in.varint();
      if (links > blob.size()) BlobReader::fail();
      for (uint64_t i = 0; i < links; ++i) e.chain.push_back(in.text());
    }
    items.push_back(std::move(e));
  }
  return items;
}

namespace {

// Inserts the findings `keep` accepts.
template <typename Keep>
void insert_findings_if(sqlite3* db, int64_t content, const std::vector<Finding>& findings, Keep keep) {
  sql::Statement finding_row(db,
      "INSERT INTO findings(tag, content, tag_text, confidence, evidence_count, evidence) VALUES (?, ?, ?, ?, ?, ?)");
  for (const Finding& finding : findings) {
    if (!keep(finding)) continue;
    finding_row.bind(1, finding.tag.value).bind(2, content).bind(3, finding.tag.display())
        .bind(4, confidence_name(finding.best)).bind(5, finding.evidence.size())
        .bind_blob(6, encode_evidence(finding.evidence)).run();
  }
}

}  // namespace

void insert_findings(sqlite3* db, int64_t content, const std::vector<Finding>& findings) {
  insert_findings_if(db, content, findings, [](const Finding&) { return true; });
}

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
  // Only the tags the content has rows for are looked at: `tags` can be every tag proven in the index.
  std::vector<uint32_t> stored;  // sorted
  {
    sql::Statement s(db, "SELECT tag FROM findings WHERE content = ? AND tag BETWEEN ? AND ? ORDER BY tag");
    s.bind(1, content).bind(2, tags.front()).bind(3, tags.back());
    while (s.step())
      if (listed(static_cast<uint32_t>(s.i64(0)))) stored.push_back(static_cast<uint32_t>(s.i64(0)));
  }
  // A row that stays is updated in place, as its key does not change: a delete then an insert each wrote
  // the table and its index (bench, with the findings keyed by tag: the literal pass 8.3-9.1 -> 7.1 s).
  sql::Statement update(db,
      "UPDATE findings SET tag_text = ?, confidence = ?, evidence_count = ?, evidence = ? WHERE tag = ? AND content = ?");
  std::vector<uint32_t> kept;
  for (const Finding& finding : findings) {
    if (!listed(finding.tag.value) || !std::binary_search(stored.begin(), stored.end(), finding.tag.value)) continue;
    update.bind(1, finding.tag.display()).bind(2, confidence_name(finding.best)).bind(3, finding.evidence.size())
        .bind_blob(4, encode_evidence(finding.evidence)).bind(5, finding.tag.value).bind(6, content).run();
    kept.push_back(finding.tag.value);
  }
  std::sort(kept.begin(), kept.end());
  sql::Statement drop_findings(db, "DELETE FROM findings WHERE tag = ? AND content = ?");
  for (uint32_t tag : stored)
    if (!std::binary_search(kept.begin(), kept.end(), tag)) drop_findings.bind(1, tag).bind(2, content).run();
  insert_findings_if(db, content, findings, [&](const Finding& f) {
    return listed(f.tag.value) && !std::binary_search(stored.begin(), stored.end(), f.tag.value);
  });
}

std::optional<Finding> read_finding(sqlite3* db, int64_t content, Tag tag) {
  sql::Statement s(db, "SELECT evidence FROM findings WHERE tag = ? AND content = ?");
  s.bind(1, tag.value).bind(2, content);
  if (!s.step()) return std::nullopt;
  Finding finding;
  finding.tag = tag;
  finding.evidence = decode_evidence(s.blob(0), tag);
  if (finding.evidence.empty()) return std::nullopt;
  for (const Evidence& e : finding.evidence) finding.best = std::max(finding.best, e.kind);
  return finding;
}

std::vector<Evidence> read_call_evidence(sqlite3* db, int64_t content, uint32_t first, uint32_t last,
                                         const std::vector<uint32_t>* only) {
  // A finding holds call or wrapper evidence exactly when its best is one of them (the two strongest).
  sql::Statement s(db, "SELECT tag, evidence FROM findings WHERE content = ? AND tag BETWEEN ? AND ?"
                       " AND confidence IN ('call', 'wrapper') ORDER BY tag");
  s.bind(1, content).bind(2, first).bind(3, last);
  std::vector<Evidence> evidence;
  while (s.step()) {
    const auto tag = static_cast<uint32_t>(s.i64(0));
    if (only && !std::binary_search(only->begin(), only->end(), tag)) continue;
    for (Evidence& e : decode_evidence(s.blob(1), Tag{tag}))
      if (e.kind == Confidence::call || e.kind == Confidence::wrapper) evidence.push_back(std::move(e));
  }
  return evidence;
}

std::vector<Evidence> read_call_evidence_of(sqlite3* db, int64_t content, const std::vector<uint32_t>& tags) {
  if (tags.empty()) return {};
  return read_call_evidence(db, content, tags.front(), tags.back(), &tags);
}

std::vector<uint32_t> tags_of(const std::vector<Evidence>& evidence) {
  std::vector<uint32_t> tags;
  for (const Evidence& e : evidence) tags.push_back(e.tag.without_protected_bit().value);
  std::sort(tags.begin(), tags.end());
  tags.erase(std::unique(tags.begin(), tags.end()), tags.end());
  return tags;
}

std::vector<Finding> findings_with_literals(std::vector<Evidence> calls, std::vector<Evidence> literals) {
  const std::vector<uint32_t> found = tags_of(literals);
  const auto gains = [&found](const Evidence& call) {
    return std::binary_search(found.begin(), found.end(), call.tag.without_protected_bit().value);
  };
  // The literals' own vector takes the calls, grown once (group_by_tag sorts each finding: the order in
  // does not matter): item by item into an empty vector, its regrowths were 2% of an index build.
  std::vector<Evidence> evidence = std::move(literals);
  evidence.reserve(evidence.size() + static_cast<size_t>(std::count_if(calls.begin(), calls.end(), gains)));
  for (Evidence& call : calls)
    if (gains(call)) evidence.push_back(std::move(call));
  return group_by_tag(std::move(evidence));
}

void upgrade_evidence_to_blobs(sqlite3* db) {
  // Schema 2 kept one row per item in `evidence` (seq: strongest first; chain joined with " -> ").
  sql::exec(db, "ALTER TABLE findings ADD COLUMN evidence BLOB NOT NULL DEFAULT x''");
  sql::Statement rows(db,
      "SELECT tag, content, kind, api, rva, file_offset, section, form, negative_displacement, tag_rva, pool_type,"
      " pool_flags, size, protected, detail, chain FROM evidence ORDER BY tag, content, seq");
  sql::Statement store(db, "UPDATE findings SET evidence = ? WHERE tag = ? AND content = ?");
  std::vector<Evidence> items;
  int64_t tag = -1, content = -1;
  const auto flush = [&] {
    if (!items.empty()) store.bind_blob(1, encode_evidence(items)).bind(2, tag).bind(3, content).run();
    items.clear();
  };
  while (rows.step()) {
    if (rows.i64(0) != tag || rows.i64(1) != content) {
      flush();
      tag = rows.i64(0);
      content = rows.i64(1);
    }
    Evidence e;
    e.tag = Tag{static_cast<uint32_t>(tag)};
    e.kind = confidence_from_name(rows.text(2));
    e.api = rows.text(3);
    e.rva = static_cast<uint32_t>(rows.i64(4));
    if (auto v = rows.opt_i64(5)) e.file_offset = static_cast<uint64_t>(*v);
    e.section = rows.text(6);
    e.form = form_from_name(rows.text(7));
    e.negative_displacement = rows.i64(8) != 0;
    e.tag_rva = static_cast<uint32_t>(rows.opt_i64(9).value_or(0));
    if (auto v = rows.opt_i64(10)) e.pool_type = static_cast<uint64_t>(*v);
    e.pool_flags = rows.i64(11) != 0;
    if (auto v = rows.opt_i64(12)) e.size = static_cast<uint64_t>(*v);
    e.protected_pool = rows.i64(13) != 0;
    e.detail = rows.text(14);
    e.chain = split(rows.text(15), " -> ");
    items.push_back(std::move(e));
  }
  flush();
  sql::exec(db, "DROP TABLE evidence; PRAGMA user_version = 3;");
}

const char* const kFindingsSchema = R"sql(
CREATE TABLE findings(tag INTEGER NOT NULL, content INTEGER NOT NULL REFERENCES contents(id), tag_text TEXT NOT NULL,
                      confidence TEXT NOT NULL, evidence_count INTEGER NOT NULL, evidence BLOB NOT NULL,
                      PRIMARY KEY(content, tag)) WITHOUT ROWID;
CREATE INDEX findings_tag ON findings(tag, confidence);
)sql";

void upgrade_findings_to_content_key(sqlite3* db) {
  sql::exec(db, "DROP INDEX findings_content; ALTER TABLE findings RENAME TO findings_v3;");
  sql::exec(db, kFindingsSchema);
  sql::exec(db, "INSERT INTO findings SELECT tag, content, tag_text, confidence, evidence_count, evidence FROM findings_v3"
                " ORDER BY content, tag;"
                "DROP TABLE findings_v3; PRAGMA user_version = 4;");
}

void rewrite_evidence(sqlite3* db, bool texts_once) {
  // The keys are read first: rows are not changed under a statement that reads them.
  std::vector<std::pair<int64_t, int64_t>> keys;  // (content, tag)
  {
    sql::Statement s(db, "SELECT content, tag FROM findings ORDER BY content, tag");
    while (s.step()) keys.emplace_back(s.i64(0), s.i64(1));
  }
  sql::Statement read(db, "SELECT evidence FROM findings WHERE content = ? AND tag = ?");
  sql::Statement write(db, "UPDATE findings SET evidence = ? WHERE content = ? AND tag = ?");
  for (const auto& [content, tag] : keys) {
    read.bind(1, content).bind(2, tag);
    const std::optional<std::string> old = read.step() ? std::optional(read.blob(0)) : std::nullopt;
    read.reset();
    if (!old) continue;
    write.bind_blob(1, encode_evidence(decode_evidence(*old, Tag{static_cast<uint32_t>(tag)}), texts_once))
        .bind(2, content).bind(3, tag).run();
  }
}

void upgrade_evidence_texts_once(sqlite3* db) {
  // Schema 4's blobs decode as they are; each is written again as a build writes it, so that an upgraded
  // index is the one a build makes (and as small).
  rewrite_evidence(db, true);
  sql::exec(db, "PRAGMA user_version = 5");
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
            "DELETE FROM contents WHERE id IN (SELECT id FROM temp.orphan);"
            "DELETE FROM tagset_tags WHERE tagset NOT IN (SELECT tagset FROM contents WHERE tagset IS NOT NULL)"
            "  AND tagset NOT IN (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'literal_tagset');"
            "DELETE FROM tagsets WHERE id NOT IN (SELECT tagset FROM contents WHERE tagset IS NOT NULL)"
            "  AND id NOT IN (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'literal_tagset');"
            "DELETE FROM roots WHERE host NOT IN (SELECT id FROM hosts);");
}

}  // namespace index_detail
}  // namespace tagwho
