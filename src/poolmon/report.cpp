// tagwho poolmon output: the suspects, each with the search answers for its tag (written by the search
// report, so owners look exactly as in `tagwho TAG`) and its pooltag.txt entries.
#include <cmath>
#include <cstdio>
#include <sstream>

#include "tagwho/poolmon.hpp"

namespace tagwho {
namespace {

// Every line of `text` with `indent` in front.
void write_indented(std::ostream& out, const std::string& text, const char* indent) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) out << indent << line << '\n';
}

bool proven(const SearchRow& row) { return row.finding->best >= Confidence::wrapper; }

std::string json_number(double value) {
  if (!std::isfinite(value)) return "null";
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.4g", value);
  if (std::fabs(value) >= 1e4 && std::fabs(value) < 9e15)
    std::snprintf(buffer, sizeof buffer, "%.0f", value);
  return buffer;
}

std::string summary_line(const PoolSuspect& suspect) {
  const PoolSeries& s = *suspect.series;
  std::ostringstream line;
  line << suspect.rank << ". " << printable(s.tag_text) << "  " << pool_kind_name(s.kind)
       << (s.kind == PoolKind::paged ? "  " : "   ");
  if (s.intervals == 0) {
    line << format_bytes(s.bytes_last) << "  (" << s.outstanding.back()
         << (s.outstanding.back() == 1 ? " allocation" : " allocations") << " in use)";
    return line.str();
  }
  std::string trend = pool_trend_name(s.trend);
  trend.resize(7, ' ');  // "leak   ", "shrinks"
  line << trend << format_bytes(s.bytes_first) << " -> " << format_bytes(s.bytes_last)
       << "  " << format_bytes(s.growth, true) << "  (grew in " << s.grew << " of " << s.intervals << " intervals, "
       << format_bytes(int64_t(std::llround(s.growth_per_interval)), true) << " per interval";
  if (s.growth_per_hour) line << ", " << format_bytes(int64_t(std::llround(*s.growth_per_hour)), true) << "/h";
  line << ")  " << sparkline(s.bytes);
  return line.str();
}

}  // namespace

void write_pool_table(std::ostream& out, const std::vector<PoolSuspect>& suspects, const PoolReportOptions& options) {
  for (const PoolSuspect& suspect : suspects) {
    const PoolSeries& s = *suspect.series;
    out << summary_line(suspect) << '\n';
    if (s.tag_uncertain)
      out << "    note   the log shows non-printable tag bytes as '.': the tag searched for is the text as shown\n";
    if (!s.note.empty()) out << "    log    " << printable(s.note) << '\n';
    std::vector<SearchRow> shown;
    size_t proven_count = 0;
    for (const SearchRow& row : suspect.owners)
      if (proven(row)) ++proven_count;
    for (const SearchRow& row : suspect.owners)
      if (proven_count ? proven(row) : shown.size() < options.max_weak_owners) shown.push_back(row);
    std::ostringstream owners;
    write_search_table(owners, shown, ReportOptions{options.max_evidence, nullptr});
    write_indented(out, owners.str(), "    ");
    if (shown.size() < suspect.owners.size())
      out << "    ... " << suspect.owners.size() - shown.size()
          << " more with weaker evidence (code, data or raw; --json lists them)\n";
    if (suspect.attributed && suspect.owners.empty()) out << "    (no driver searched uses this tag)\n";
    if (options.tagdb) {
      std::ostringstream entries;
      write_lookup_table(entries, s.tag, options.tagdb->lookup(s.tag));
      write_indented(out, entries.str(), "    tagdb  ");
    }
  }
}

void write_pool_json(std::ostream& out, const std::vector<PoolSuspect>& suspects, const Tagdb* tagdb) {
  for (const PoolSuspect& suspect : suspects) {
    const PoolSeries& s = *suspect.series;
    out << "{\"rank\":" << suspect.rank << ",\"tag\":" << json_string(s.tag.display()) << ",\"value\":\""
        << s.tag.hex() << "\",\"tag_text\":" << json_string(s.tag_text) << ",\"type\":\"" << pool_kind_name(s.kind)
        << "\",\"trend\":\"" << pool_trend_name(s.trend) << "\",\"bytes_first\":" << s.bytes_first
        << ",\"bytes_last\":" << s.bytes_last << ",\"peak\":" << s.peak << ",\"growth\":" << s.growth
        << ",\"intervals\":" << s.intervals << ",\"grew\":" << s.grew
        << ",\"steadiness\":" << json_number(s.steadiness)
        << ",\"growth_per_interval\":" << json_number(s.growth_per_interval) << ",\"growth_per_hour\":"
        << (s.growth_per_hour ? json_number(*s.growth_per_hour) : std::string("null"))
        << ",\"score\":" << json_number(s.score) << ",\"bytes\":[";
    for (size_t i = 0; i < s.bytes.size(); ++i) out << (i ? "," : "") << s.bytes[i];
    out << "],\"allocations_last\":" << s.outstanding.back() << ",\"note\":" << json_string(s.note);
    if (s.tag_uncertain) out << ",\"tag_uncertain\":true";
    out << ",\"attributed\":" << (suspect.attributed ? "true" : "false") << ",\"owners\":[";
    for (size_t i = 0; i < suspect.owners.size(); ++i)
      out << (i ? "," : "") << search_row_json(suspect.owners[i], tagdb);
    out << "],\"tagdb\":";
    if (tagdb) {
      std::vector<const TagdbEntry*> entries = tagdb->lookup(s.tag);
      out << '[';
      for (size_t i = 0; i < entries.size(); ++i) out << (i ? "," : "") << tagdb_entry_json(*entries[i]);
      out << ']';
    } else {
      out << "null";
    }
    out << "}\n";
  }
}

}  // namespace tagwho
