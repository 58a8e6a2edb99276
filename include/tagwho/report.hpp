// Ranking and output: the human table and JSON Lines, for searches (tag -> files) and driver listings
// (file -> tags). Reports only format; they never analyse.
#pragma once
#include <ostream>
#include <string>
#include <vector>

#include "tagwho/evidence.hpp"
#include "tagwho/tagdb.hpp"
#include "tagwho/tag.hpp"

namespace tagwho {

// One (tag, file) answer of a search.
struct SearchRow {
  const DriverReport* report = nullptr;
  const Finding* finding = nullptr;
};

// Orders search answers: tags in the order asked, then strongest evidence first (the ladder), then the
// number of evidence items at that level, then path (so the order is stable).
std::vector<SearchRow> rank_search(const std::vector<const DriverReport*>& reports, const std::vector<Tag>& tags);

struct ReportOptions {
  size_t max_evidence = 5;  // evidence lines per finding in the table (0 = all); JSON always has all
  const Tagdb* tagdb = nullptr;  // when set, every result shows the database entries for its tag
};

void write_search_table(std::ostream& out, const std::vector<SearchRow>& rows, const ReportOptions& options);
void write_search_json(std::ostream& out, const std::vector<SearchRow>& rows, const Tagdb* tagdb = nullptr);
// One search answer as the JSON object write_search_json prints on its line (without the newline).
std::string search_row_json(const SearchRow& row, const Tagdb* tagdb = nullptr);
// Files the database names for a searched tag with no evidence found in them, after the search rows.
void write_unproven_table(std::ostream& out, const std::vector<UnprovenEntry>& rows);
void write_unproven_json(std::ostream& out, const std::vector<UnprovenEntry>& rows);
void write_driver_table(std::ostream& out, const DriverReport& report, const ReportOptions& options);
void write_driver_json(std::ostream& out, const DriverReport& report, const Tagdb* tagdb = nullptr);

// tagwho tagdb lookup: the entries for one tag ("Afd1  Afd? - afd.sys - AFD objects  [pooltag.txt:57]").
void write_lookup_table(std::ostream& out, Tag tag, const std::vector<const TagdbEntry*>& entries);
void write_lookup_json(std::ostream& out, Tag tag, const std::vector<const TagdbEntry*>& entries);
// tagwho tagdb unknown: one object per (tag, file) the database does not know.
void write_unknown_json(std::ostream& out, const DriverReport& report, const Finding& finding);
// An entry as JSON: {"pattern":"Afd?","binary":"afd.sys","description":"AFD objects","source":...,"line":57}
std::string tagdb_entry_json(const TagdbEntry& entry);

// The service that loads a file, as JSON: {"name":...,"display_name":...,"image_path":...,"start":"demand",
// "start_value":3,"type":"kernel","type_value":1,"group":...,"control_set":"ControlSet001"}
std::string service_json(const ServiceInfo& service);
// Driver services whose file is missing from the scanned Windows root, after the results: a
// "missing  ROOT  service NAME (start S): driver file not found at PATH" line, or
// {"missing_driver":PATH,"root":ROOT,"service":{...}} (PATH "" when the ImagePath is off the volume).
void write_missing_table(std::ostream& out, const std::vector<MissingService>& missing);
void write_missing_json(std::ostream& out, const std::vector<MissingService>& missing);

// "NonPagedPoolNx", "PagedPool", or the number when unknown; POOL_FLAGS as "POOL_FLAG_NON_PAGED|...".
std::string pool_type_name(uint64_t value, bool pool_flags);
// One evidence item as a line of text: "call ExAllocatePoolWithTag at 0x1040 (.text, call [iat]) ...".
std::string describe_evidence(const Evidence& evidence);
// Text from a file or file name made safe for a terminal: control bytes become \xNN (hostile names and
// version strings must not move the cursor or change colours); valid UTF-8 is kept.
std::string printable(const std::string& text);
// A string escaped for JSON, with surrounding quotes; bytes that are not valid UTF-8 become \u00XX.
std::string json_string(const std::string& text);

}  // namespace tagwho
