#include "tagwho/report.hpp"
#include "core/format.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace tagwho {
namespace {

// Length of the multi-byte UTF-8 sequence starting at text[i], or 0 when it is not a valid one.
size_t valid_utf8_length(const std::string& text, size_t i) {
  unsigned char lead = static_cast<unsigned char>(text[i]);
  size_t length = (lead & 0xe0) == 0xc0 ? 2 : (lead & 0xf0) == 0xe0 ? 3 : (lead & 0xf8) == 0xf0 ? 4 : 0;
  if (!length || i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k)
    if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) return 0;
  return length;
}

size_t tag_order(const std::vector<Tag>& tags, Tag tag) {
  return static_cast<size_t>(std::find(tags.begin(), tags.end(), tag) - tags.begin());
}

size_t count_at_best(const Finding& finding) {
  return static_cast<size_t>(std::count_if(finding.evidence.begin(), finding.evidence.end(),
                                           [&](const Evidence& e) { return e.kind == finding.best; }));
}

std::string version_summary(const VersionInfo& version) {
  std::string text = version.description;
  if (!version.company.empty()) text += (text.empty() ? "" : ", ") + version.company;
  if (!version.file_version.empty()) text += (text.empty() ? "" : ", ") + version.file_version;
  return text;
}

void write_evidence_lines(std::ostream& out, const Finding& finding, const ReportOptions& options,
                          const char* indent) {
  size_t shown = options.max_evidence ? std::min(options.max_evidence, finding.evidence.size())
                                      : finding.evidence.size();
  for (size_t i = 0; i < shown; ++i) out << indent << describe_evidence(finding.evidence[i]) << '\n';
  if (shown < finding.evidence.size())
    out << indent << "... " << finding.evidence.size() - shown << " more (--max-evidence 0 shows all)\n";
}

void write_evidence_json(std::ostream& out, const std::vector<Evidence>& evidence) {
  out << '[';
  for (size_t i = 0; i < evidence.size(); ++i) {
    const Evidence& e = evidence[i];
    if (i) out << ',';
    out << "{\"kind\":\"" << confidence_name(e.kind) << '"';
    if (!e.api.empty()) out << ",\"api\":" << json_string(e.api);
    out << ",\"rva\":\"" << hex(e.rva) << '"';
    out << ",\"section\":" << json_string(e.section);
    if (e.file_offset) out << ",\"offset\":\"" << hex(*e.file_offset) << '"';
    if (e.form != CallForm::none) out << ",\"form\":" << json_string(call_form_name(e.form));
    if (e.kind == Confidence::call || e.kind == Confidence::wrapper) out << ",\"tag_rva\":\"" << hex(e.tag_rva) << '"';
    if (e.pool_type) {
      out << ",\"" << (e.pool_flags ? "pool_flags" : "pool_type") << "\":\"" << hex(*e.pool_type) << '"';
      out << ",\"pool\":" << json_string(pool_type_name(*e.pool_type, e.pool_flags));
    }
    if (e.size) out << ",\"size\":" << *e.size;
    if (e.protected_pool) out << ",\"protected\":true";
    if (e.tag_kind == TagKind::objref) out << ",\"tag_kind\":\"objref\"";
    if (e.negative_displacement) out << ",\"negative_displacement\":true";
    if (!e.detail.empty()) out << ",\"detail\":" << json_string(e.detail);
    if (!e.chain.empty()) {
      out << ",\"chain\":[";
      for (size_t c = 0; c < e.chain.size(); ++c) out << (c ? "," : "") << json_string(e.chain[c]);
      out << ']';
    }
    out << '}';
  }
  out << ']';
}

void write_tag_fields(std::ostream& out, const Finding& finding) {
  out << "\"tag\":" << json_string(finding.tag.display()) << ",\"value\":\"" << finding.tag.hex() << '"';
}


// "pooltag.txt:57": where an entry came from, short enough for a table line.
std::string entry_origin(const TagdbEntry& entry) {
  std::string name = entry.source.substr(entry.source.find_last_of('/') + 1);
  return name + ":" + std::to_string(entry.line);
}

std::string entry_text(const TagdbEntry& entry) {
  std::string text = entry.pattern + " - " + (entry.binary.empty() ? "" : entry.binary + " - ") + entry.description;
  return printable(text) + "  [" + printable(entry_origin(entry)) + "]";
}

// The database's view of a finding, under its evidence: the entries, then a disagreement if any.
void write_tagdb_lines(std::ostream& out, const Tagdb& tagdb, const Finding& finding, const std::string& path,
                       const char* indent) {
  TagdbJoin join = join_finding(tagdb, finding, path);
  for (const TagdbEntry* entry : join.entries) out << indent << "tagdb  " << entry_text(*entry) << '\n';
  if (join.entries.empty()) out << indent << "tagdb  (no entry for " << finding.tag.display() << ")\n";
  if (join.disagrees())
    out << indent << "disagrees: " << confidence_name(finding.best) << " evidence here, but the tag database "
        << (join.entries.empty() ? "has no entry for this tag" : "does not name this file") << '\n';
}

void write_entries_json(std::ostream& out, const std::vector<const TagdbEntry*>& entries) {
  out << '[';
  for (size_t i = 0; i < entries.size(); ++i) out << (i ? "," : "") << tagdb_entry_json(*entries[i]);
  out << ']';
}

void write_tagdb_json(std::ostream& out, const Tagdb& tagdb, const Finding& finding, const std::string& path) {
  TagdbJoin join = join_finding(tagdb, finding, path);
  out << ",\"tagdb\":";
  write_entries_json(out, join.entries);
  out << ",\"tagdb_names_file\":" << (join.names_file ? "true" : "false");
  if (join.disagrees()) out << ",\"disagreement\":\"not_named\"";
}

// The service that loads a file, on one line under the result.
void write_service_line(std::ostream& out, const ServiceInfo& service, const char* indent) {
  out << indent << "service  " << printable(service.name);
  if (!service.display_name.empty()) out << " \"" << printable(service.display_name) << '"';
  out << ", start " << (service.start ? service_start_name(service.start) : "?");
  if (service.type) out << ", " << service_type_name(service.type);
  if (!service.group.empty()) out << ", group " << printable(service.group);
  out << ", " << printable(service.control_set) << '\n';
}

}  // namespace

std::vector<SearchRow> rank_search(const std::vector<const DriverReport*>& reports, const std::vector<Tag>& tags) {
  std::vector<SearchRow> rows;
  for (const DriverReport* report : reports)
    for (const Finding& finding : report->findings) rows.push_back({report, &finding});
  std::stable_sort(rows.begin(), rows.end(), [&](const SearchRow& a, const SearchRow& b) {
    size_t order_a = tag_order(tags, a.finding->tag), order_b = tag_order(tags, b.finding->tag);
    if (order_a != order_b) return order_a < order_b;
    if (a.finding->best != b.finding->best) return a.finding->best > b.finding->best;
    size_t count_a = count_at_best(*a.finding), count_b = count_at_best(*b.finding);
    if (count_a != count_b) return count_a > count_b;
    return a.report->path < b.report->path;
  });
  return rows;
}

std::string pool_type_name(uint64_t value, bool pool_flags) {
  if (pool_flags) {
    static const std::pair<uint64_t, const char*> kFlags[] = {
        {0x1, "USE_QUOTA"},       {0x2, "UNINITIALIZED"},    {0x4, "SESSION"},
        {0x8, "CACHE_ALIGNED"},   {0x20, "RAISE_ON_FAILURE"}, {0x40, "NON_PAGED"},
        {0x80, "NON_PAGED_EXECUTE"}, {0x100, "PAGED"}};
    std::string text;
    uint64_t rest = value;
    for (auto [bit, name] : kFlags)
      if (value & bit) {
        text += (text.empty() ? "POOL_FLAG_" : "|POOL_FLAG_") + std::string(name);
        rest &= ~bit;
      }
    if (rest || text.empty()) text += (text.empty() ? "" : "|") + hex(rest);
    return text;
  }
  // POOL_TYPE values; the flag bits POOL_QUOTA_FAIL_INSTEAD_OF_RAISE (0x8),
  // POOL_RAISE_IF_ALLOCATION_FAILURE (0x10) and POOL_ZERO_ALLOCATION (0x400) are shown after the base type.
  static const std::pair<uint64_t, const char*> kTypes[] = {
      {0, "NonPagedPool"},  {1, "PagedPool"}, {2, "NonPagedPoolMustSucceed"}, {4, "NonPagedPoolCacheAligned"},
      {5, "PagedPoolCacheAligned"}, {6, "NonPagedPoolCacheAlignedMustS"}, {32, "NonPagedPoolSession"},
      {33, "PagedPoolSession"}, {512, "NonPagedPoolNx"}, {516, "NonPagedPoolNxCacheAligned"},
      {544, "NonPagedPoolSessionNx"}};
  uint64_t base = value & ~uint64_t{0x8 | 0x10 | 0x400};
  for (auto [type, name] : kTypes)
    if (type == base) {
      std::string text = name;
      if (value & 0x8) text += "|QUOTA_FAIL_INSTEAD_OF_RAISE";
      if (value & 0x10) text += "|RAISE_IF_FAILURE";
      if (value & 0x400) text += "|ZERO";
      return text;
    }
  return hex(value);
}

std::string describe_evidence(const Evidence& e) {
  std::ostringstream text;
  text << confidence_name(e.kind);
  if (e.kind == Confidence::call || e.kind == Confidence::wrapper) {
    text << "  " << e.api << " at " << hex(e.rva) << " (" << (e.section.empty() ? "?" : printable(e.section));
    if (e.form != CallForm::none) text << ", " << call_form_name(e.form);
    text << ")";
    if (e.pool_type) text << ", " << pool_type_name(*e.pool_type, e.pool_flags);
    if (e.size) text << ", " << *e.size << " bytes";
    text << ", tag set at " << hex(e.tag_rva);
    if (e.protected_pool) text << ", with PROTECTED_POOL bit";
    if (e.tag_kind == TagKind::objref) text << ", object-reference tag";
    if (!e.detail.empty()) text << ", " << e.detail;  // "one of 2 tags", "tag loaded from .rdata at 0x..."
    for (const std::string& link : e.chain) text << " -> " << link;
  } else {
    text << "  ";
    if (!e.section.empty()) text << printable(e.section) << " rva " << hex(e.rva) << ", ";
    if (e.file_offset) text << "offset " << hex(*e.file_offset);
    if (!e.detail.empty()) text << ", " << e.detail;
    if (e.protected_pool) text << ", with PROTECTED_POOL bit";
  }
  return text.str();
}

void write_search_table(std::ostream& out, const std::vector<SearchRow>& rows, const ReportOptions& options) {
  for (const SearchRow& row : rows) {
    const DriverReport& report = *row.report;
    out << row.finding->tag.display() << "  " << confidence_name(row.finding->best) << "  "
        << machine_name(report.machine) << "  " << printable(report.path);
    std::string version = version_summary(report.version);
    if (!version.empty()) out << "  [" << printable(version) << "]";
    out << '\n';
    if (report.service) write_service_line(out, *report.service, "    ");
    write_evidence_lines(out, *row.finding, options, "    ");
    if (options.tagdb) write_tagdb_lines(out, *options.tagdb, *row.finding, report.path, "    ");
  }
}

void write_search_json(std::ostream& out, const std::vector<SearchRow>& rows, const Tagdb* tagdb) {
  for (const SearchRow& row : rows) out << search_row_json(row, tagdb) << '\n';
}

std::string search_row_json(const SearchRow& row, const Tagdb* tagdb) {
  std::ostringstream out;
  out << '{';
  write_tag_fields(out, *row.finding);
  out << ",\"path\":" << json_string(row.report->path) << ",\"machine\":\"" << machine_name(row.report->machine)
      << "\",\"confidence\":\"" << confidence_name(row.finding->best) << "\",\"evidence\":";
  write_evidence_json(out, row.finding->evidence);
  if (row.report->service) out << ",\"service\":" << service_json(*row.report->service);
  if (tagdb) write_tagdb_json(out, *tagdb, *row.finding, row.report->path);
  out << '}';
  return out.str();
}

void write_unproven_table(std::ostream& out, const std::vector<UnprovenEntry>& rows) {
  for (const UnprovenEntry& row : rows) {
    out << row.tag.display() << "  none  " << machine_name(row.report->machine) << "  " << printable(row.report->path)
        << '\n';
    for (const TagdbEntry* entry : row.entries) out << "    tagdb  " << entry_text(*entry) << '\n';
    out << "    disagrees: the tag database names this file, but the scan found no evidence here\n";
  }
}

void write_unproven_json(std::ostream& out, const std::vector<UnprovenEntry>& rows) {
  for (const UnprovenEntry& row : rows) {
    out << "{\"tag\":" << json_string(row.tag.display()) << ",\"value\":\"" << row.tag.hex() << '"'
        << ",\"path\":" << json_string(row.report->path) << ",\"machine\":\"" << machine_name(row.report->machine)
        << "\",\"confidence\":\"none\",\"evidence\":[],\"tagdb\":";
    write_entries_json(out, row.entries);
    out << ",\"tagdb_names_file\":true,\"disagreement\":\"no_evidence\"}\n";
  }
}

void write_driver_table(std::ostream& out, const DriverReport& report, const ReportOptions& options) {
  out << printable(report.path) << "  " << machine_name(report.machine);
  std::string version = version_summary(report.version);
  if (!version.empty()) out << "  [" << printable(version) << "]";
  out << '\n';
  if (report.service) write_service_line(out, *report.service, "    ");
  if (report.findings.empty()) out << "    (no tags found)\n";
  for (const Finding& finding : report.findings) {
    out << "  " << finding.tag.display() << "  " << finding.tag.hex() << "  " << confidence_name(finding.best) << '\n';
    write_evidence_lines(out, finding, options, "      ");
    if (options.tagdb) write_tagdb_lines(out, *options.tagdb, finding, report.path, "      ");
  }
  if (!report.objref_findings.empty()) out << "  object-reference tags (Ob*WithTag, not pool tags):\n";
  for (const Finding& finding : report.objref_findings) {
    out << "  " << finding.tag.display() << "  " << finding.tag.hex() << "  objref " << confidence_name(finding.best)
        << '\n';
    write_evidence_lines(out, finding, options, "      ");
  }
  if (!options.tagdb) return;
  std::vector<const TagdbEntry*> unproven = unproven_driver(*options.tagdb, report);
  if (!unproven.empty()) out << "  the tag database names this file for tags the scan did not find here:\n";
  for (const TagdbEntry* entry : unproven) out << "      " << entry_text(*entry) << '\n';
}

void write_driver_json(std::ostream& out, const DriverReport& report, const Tagdb* tagdb) {
  out << "{\"path\":" << json_string(report.path) << ",\"machine\":\"" << machine_name(report.machine) << '"';
  out << ",\"version\":{\"company\":" << json_string(report.version.company)
      << ",\"description\":" << json_string(report.version.description)
      << ",\"file_version\":" << json_string(report.version.file_version) << '}';
  if (report.service) out << ",\"service\":" << service_json(*report.service);
  out << ",\"tags\":[";
  for (size_t i = 0; i < report.findings.size(); ++i) {
    const Finding& finding = report.findings[i];
    out << (i ? "," : "") << '{';
    write_tag_fields(out, finding);
    out << ",\"confidence\":\"" << confidence_name(finding.best) << "\",\"evidence\":";
    write_evidence_json(out, finding.evidence);
    if (tagdb) write_tagdb_json(out, *tagdb, finding, report.path);
    out << '}';
  }
  out << ']';
  if (!report.objref_findings.empty()) {
    out << ",\"objref_tags\":[";
    for (size_t i = 0; i < report.objref_findings.size(); ++i) {
      const Finding& finding = report.objref_findings[i];
      out << (i ? "," : "") << '{';
      write_tag_fields(out, finding);
      out << ",\"tag_kind\":\"objref\",\"confidence\":\"" << confidence_name(finding.best) << "\",\"evidence\":";
      write_evidence_json(out, finding.evidence);
      out << '}';
    }
    out << ']';
  }
  if (tagdb) {
    out << ",\"tagdb_unproven\":";
    write_entries_json(out, unproven_driver(*tagdb, report));
  }
  out << ",\"errors\":[";
  for (size_t i = 0; i < report.errors.size(); ++i) out << (i ? "," : "") << json_string(report.errors[i]);
  out << "]}\n";
}

void write_lookup_table(std::ostream& out, Tag tag, const std::vector<const TagdbEntry*>& entries) {
  if (entries.empty()) out << tag.display() << "  (not in the tag database)\n";
  for (const TagdbEntry* entry : entries) out << tag.display() << "  " << entry_text(*entry) << '\n';
}

void write_lookup_json(std::ostream& out, Tag tag, const std::vector<const TagdbEntry*>& entries) {
  out << "{\"tag\":" << json_string(tag.display()) << ",\"matches\":";
  write_entries_json(out, entries);
  out << "}\n";
}

void write_unknown_json(std::ostream& out, const DriverReport& report, const Finding& finding) {
  out << '{';
  write_tag_fields(out, finding);
  out << ",\"path\":" << json_string(report.path) << ",\"machine\":\"" << machine_name(report.machine)
      << "\",\"confidence\":\"" << confidence_name(finding.best) << "\",\"evidence\":";
  write_evidence_json(out, finding.evidence);
  out << "}\n";
}

std::string tagdb_entry_json(const TagdbEntry& entry) {
  return "{\"pattern\":" + json_string(entry.pattern) + ",\"binary\":" + json_string(entry.binary) +
         ",\"description\":" + json_string(entry.description) + ",\"source\":" + json_string(entry.source) +
         ",\"line\":" + std::to_string(entry.line) + "}";
}

std::string service_json(const ServiceInfo& service) {
  std::string text = "{\"name\":" + json_string(service.name);
  text += ",\"display_name\":" + json_string(service.display_name);
  text += ",\"image_path\":" + json_string(service.image_path);
  text += ",\"start\":" + (service.start ? json_string(service_start_name(service.start)) : std::string("null"));
  if (service.start) text += ",\"start_value\":" + std::to_string(*service.start);
  text += ",\"type\":" + (service.type ? json_string(service_type_name(service.type)) : std::string("null"));
  if (service.type) text += ",\"type_value\":" + std::to_string(*service.type);
  text += ",\"group\":" + json_string(service.group);
  text += ",\"control_set\":" + json_string(service.control_set) + "}";
  return text;
}

void write_missing_table(std::ostream& out, const std::vector<MissingService>& missing) {
  for (const MissingService& item : missing) {
    out << "missing  " << printable(item.root) << "  service " << printable(item.service.name) << " (start "
        << (item.service.start ? service_start_name(item.service.start) : "?") << "): driver file not found at "
        << (item.expected_path.empty() ? "a path outside this volume" : printable(item.expected_path));
    if (!item.service.image_path.empty()) out << "  [ImagePath " << printable(item.service.image_path) << "]";
    out << '\n';
  }
}

void write_missing_json(std::ostream& out, const std::vector<MissingService>& missing) {
  for (const MissingService& item : missing)
    out << "{\"missing_driver\":" << json_string(item.expected_path) << ",\"root\":" << json_string(item.root)
        << ",\"service\":" << service_json(item.service) << "}\n";
}

std::string printable(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t length = c < 0x80 ? 0 : valid_utf8_length(text, i);
    if (length) {
      out.append(text, i, length);
      i += length - 1;
    } else if (c < 0x20 || c >= 0x7f) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\x%02x", c);
      out += buffer;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    switch (c) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      default: break;
    }
    if (c < 0x20 || c == 0x7f) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
      out += buffer;
      continue;
    }
    if (c < 0x80) {
      out += static_cast<char>(c);
      continue;
    }
    // Copy a valid UTF-8 sequence as is; escape stray bytes (file names need not be UTF-8).
    size_t length = valid_utf8_length(text, i);
    if (length) {
      out.append(text, i, length);
      i += length - 1;
    } else {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
      out += buffer;
    }
  }
  return out + "\"";
}

}  // namespace tagwho
