// Internals of the index shared by its source files: the connection, the schema, and reading and writing
// reports and findings. Not a public header.
#pragma once
#include <sqlite3.h>

#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "index/sqlite.hpp"
#include "tagwho/evidence.hpp"
#include "tagwho/index.hpp"
#include "tagwho/service.hpp"
#include "tagwho/source.hpp"

namespace tagwho {

struct Index::State {
  std::string path;
  sqlite3* db = nullptr;
  ~State() {
    if (db) sqlite3_close_v2(db);
  }
};

namespace index_detail {

int64_t now_seconds();
std::string hex64(uint64_t value);
// Absolute and lexically normal, without resolving symlinks (the walk does not resolve them either).
std::string absolute_path(const std::string& path);
// Lower-case file name without extension: what pooltag.txt's binary field is compared with.
std::string stem_key(const std::string& path);
// The walk's order: component by component.
bool path_less(const std::string& a, const std::string& b);
// True when path is root or lies below it (both absolute and normal).
bool under_root(const std::string& path, const std::string& root);
// True when path names a file inside the disk image `image`: "IMAGE:/..." or "IMAGE:pN:/...".
bool inside_image(const std::string& path, const std::string& image);

Machine machine_from_name(const std::string& name);
Confidence confidence_from_name(const std::string& name);
CallForm form_from_name(const std::string& name);


// Runs the body in a transaction (BEGIN IMMEDIATE): committed when it returns, rolled back if it throws.
void write_transaction(sqlite3* db, const std::function<void()>& body);

int64_t host_id(sqlite3* db, const std::string& name, bool create);
// The roots recorded for a host, in the order they were given.
std::vector<std::string> host_roots(sqlite3* db, int64_t host);
std::set<uint32_t> tagset_tags(sqlite3* db, int64_t tagset);
int64_t make_tagset(sqlite3* db, const std::set<uint32_t>& tags);
std::string meta(sqlite3* db, const std::string& key);
void set_meta(sqlite3* db, const std::string& key, const std::string& value);

// Inserts the content's facts and findings; returns its id.
int64_t insert_content(sqlite3* db, const std::string& hash, const DriverReport& report, int64_t tagset);
// Replaces the content's findings for the tags in `tags` (sorted; rows of tags without a finding are removed).
void replace_findings(sqlite3* db, int64_t content, const std::vector<Finding>& findings,
                      const std::vector<uint32_t>& tags);
// A finding's evidence as the index stores it (one blob per finding: store.cpp), and back; decoding throws
// sql::Failure on a damaged blob. texts_once false: schema 4's layout (every text whole), which schema 5
// reads too; for the tests that downgrade an index.
std::string encode_evidence(const std::vector<Evidence>& items, bool texts_once = true);
std::vector<Evidence> decode_evidence(const std::string& blob, Tag tag);
// Schema 2 -> 3: the rows of the `evidence` table become one blob per finding (in the caller's transaction).
void upgrade_evidence_to_blobs(sqlite3* db);
// The findings table and its index, as schema 4 lays them down. Keyed by (content, tag): a content's rows
// are stored together, as an index build writes them, content after content (keyed by tag, each content's
// rows went to pages all over the table, which SQLite's page cache could not hold: bench index build
// 14.6-16.1 -> 11.5-12.0 s). Searches by tag read the index, which also holds the confidence (the build's
// question "which tags are proven anywhere" reads it alone).
extern const char* const kFindingsSchema;
// Schema 3 -> 4: findings keyed by (content, tag) instead of (tag, content) (in the caller's transaction).
void upgrade_findings_to_content_key(sqlite3* db);
// Every finding's evidence blob written again, with its texts once or whole (encode_evidence), in the
// caller's transaction.
void rewrite_evidence(sqlite3* db, bool texts_once);
// Schema 4 -> 5: rewrite_evidence(db, true) (in the caller's transaction).
void upgrade_evidence_texts_once(sqlite3* db);
// The stored finding of a tag in a content (nullopt when none).
std::optional<Finding> read_finding(sqlite3* db, int64_t content, Tag tag);
// Every call/wrapper evidence item stored for the content (all tags, or those in [first, last]; only: and
// in this sorted list, whose other findings are not decoded).
std::vector<Evidence> read_call_evidence(sqlite3* db, int64_t content, uint32_t first = 0,
                                         uint32_t last = UINT32_MAX, const std::vector<uint32_t>* only = nullptr);
// The call and wrapper evidence stored for the content's tags in `tags` (sorted values).
std::vector<Evidence> read_call_evidence_of(sqlite3* db, int64_t content, const std::vector<uint32_t>& tags);
// The tags evidence is for (the protected bit stripped), sorted, each once.
std::vector<uint32_t> tags_of(const std::vector<Evidence>& evidence);
// The findings of the tags that literal evidence was found for: their stored call and wrapper evidence
// (calls, of any tags) with the literal evidence. Literal evidence is classified against the call evidence
// of the same content, as a scan classifies it (classify_per_tag).
std::vector<Finding> findings_with_literals(std::vector<Evidence> calls, std::vector<Evidence> literals);
// The report shell of a content: machine, parsed, size, version, errors (no path, no findings).
DriverReport read_content(sqlite3* db, int64_t content);
// Contents no file refers to, and tagsets no content uses, are deleted.
void collect_garbage(sqlite3* db);

// The service that loads a file: the files table's service_* columns (all NULL when none), in this order.
constexpr const char* kServiceColumns =
    "service_name, service_display_name, service_image_path, service_start, service_type, service_group, service_control_set";
// Binds the 7 service columns from parameter `first` on.
void bind_service(sql::Statement& s, int first, const std::optional<ServiceInfo>& service);
// Reads the 7 service columns from result column `first` on.
std::optional<ServiceInfo> column_service(const sql::Statement& s, int first);
// The host's driver services whose file is missing, as the last build found them (replaced).
void store_missing_services(sqlite3* db, int64_t host, const std::vector<MissingService>& missing);
// Every host's missing driver services, by host, root (walk order) and service name. multi_host: roots
// shown as host:root, as paths are.
std::vector<MissingService> read_missing_services(sqlite3* db, bool multi_host);

// Reads indexed files again (to search them for tags outside their content's literal set, or to check them
// against the index): files on this machine by path; files inside disk images (stored as "IMAGE:/..." under
// an image root) through the image, opened once on first need. Thread-safe.
class FileReopener {
 public:
  explicit FileReopener(std::vector<std::string> roots) : roots_(std::move(roots)) {}
  // Files this run already holds (a build's sources): read through them, no image opened again.
  void know(const SourceFile& file);
  Result<FileBytes> read(const std::string& path);

 private:
  std::vector<std::string> roots_;
  std::mutex lock_;
  std::set<std::string> opened_images_;
  std::unordered_map<std::string, SourceFile> known_;  // display path -> file
};

}  // namespace index_detail
}  // namespace tagwho
