// Joining the database with scan results: what it says about each finding, and where it and the scan
// disagree. The database only annotates; it never changes what the scan found.
#include <algorithm>

#include "tagwho/tagdb.hpp"

namespace tagwho {
namespace {

// call and wrapper evidence prove a tag; code/data/raw bytes only suggest it.
bool is_proof(Confidence confidence) { return confidence >= Confidence::wrapper; }

bool has_finding(const DriverReport& report, Tag tag) {
  return std::any_of(report.findings.begin(), report.findings.end(),
                     [&](const Finding& finding) { return finding.tag == tag; });
}

bool any_names(const std::vector<const TagdbEntry*>& entries, std::string_view path) {
  return std::any_of(entries.begin(), entries.end(), [&](const TagdbEntry* entry) { return entry->names_file(path); });
}

}  // namespace

TagdbJoin join_finding(const Tagdb& tagdb, const Finding& finding, std::string_view path) {
  TagdbJoin join;
  join.entries = tagdb.lookup(finding.tag);
  join.names_file = any_names(join.entries, path);
  join.proven = is_proof(finding.best);
  return join;
}

std::vector<UnprovenEntry> unproven_search(const Tagdb& tagdb, const std::vector<Tag>& tags,
                                           const std::vector<const DriverReport*>& reports) {
  std::vector<UnprovenEntry> unproven;
  for (Tag tag : tags) {
    std::vector<const TagdbEntry*> entries = tagdb.lookup(tag);
    if (entries.empty()) continue;
    for (const DriverReport* report : reports) {
      if (has_finding(*report, tag)) continue;
      UnprovenEntry row{tag, {}, report};
      for (const TagdbEntry* entry : entries)
        if (entry->names_file(report->path)) row.entries.push_back(entry);
      if (!row.entries.empty()) unproven.push_back(std::move(row));
    }
  }
  return unproven;
}

std::vector<const TagdbEntry*> unproven_driver(const Tagdb& tagdb, const DriverReport& report) {
  std::vector<const TagdbEntry*> unproven;
  for (const TagdbEntry* entry : tagdb.entries_naming(report.path)) {
    bool found = std::any_of(report.findings.begin(), report.findings.end(),
                             [&](const Finding& finding) { return entry->matches(finding.tag); });
    if (!found) unproven.push_back(entry);
  }
  return unproven;
}

std::vector<const Finding*> unknown_findings(const Tagdb& tagdb, const DriverReport& report) {
  std::vector<const Finding*> unknown;
  for (const Finding& finding : report.findings)
    if (is_proof(finding.best) && tagdb.lookup(finding.tag).empty()) unknown.push_back(&finding);
  return unknown;
}

}  // namespace tagwho
