// Internals of the index shared by its source files: the connection, the schema, and reading and writing
// reports and findings. Not a public header.
#pragma once
#include <sqlite3.h>

#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "index/sqlite.hpp"
#include "tagwho/evidence.hpp"
#include "tagwho/index.hpp"

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

Machine machine_from_name(const std::string& name);
Confidence confidence_from_name(const std::string& name);
CallForm form_from_name(const std::string& name);

void parallel_for(size_t count, unsigned threads, const std::function<void(size_t)>& work);

// Runs the body in a transaction (BEGIN IMMEDIATE): committed when it returns, rolled back if it throws.
void write_transaction(sqlite3* db, const std::function<void()>& body);

int64_t host_id(sqlite3* db, const std::string& name, bool create);
std::set<uint32_t> tagset_tags(sqlite3* db, int64_t tagset);
int64_t make_tagset(sqlite3* db, const std::set<uint32_t>& tags);
std::string meta(sqlite3* db, const std::string& key);
void set_meta(sqlite3* db, const std::string& key, const std::string& value);

// Inserts the content's facts and findings; returns its id.
int64_t insert_content(sqlite3* db, const std::string& hash, const DriverReport& report, int64_t tagset);
// Replaces the content's findings for these tags (rows of tags without a finding are removed).
void replace_findings(sqlite3* db, int64_t content, const std::vector<Finding>& findings, const std::set<uint32_t>& tags);
// The stored finding of a tag in a content (nullopt when none).
std::optional<Finding> read_finding(sqlite3* db, int64_t content, Tag tag);
// Every call/wrapper evidence item stored for the content (all tags).
std::vector<Evidence> read_call_evidence(sqlite3* db, int64_t content);
// The report shell of a content: machine, parsed, size, version, errors (no path, no findings).
DriverReport read_content(sqlite3* db, int64_t content);
// Contents no file refers to, and tagsets no content uses, are deleted.
void collect_garbage(sqlite3* db);

}  // namespace index_detail
}  // namespace tagwho
