// Reading pooltag.txt the way poolmon and WinDbg do. Those tools read it with the C runtime in text mode,
// which is why CR LF counts as one line end and a Ctrl-Z ends the file. The format is
// "<PoolTag> - <binary-name> - <Description>" with the tag in the first columns, padded with spaces.
#include <fstream>
#include <iterator>
#include <set>

#include "tagdb/text.hpp"
#include "tagwho/tagdb.hpp"

namespace tagwho {
namespace {

enum class LineKind { blank, comment, entry, free_text };

struct ParsedLine {
  LineKind kind = LineKind::free_text;
  TagdbEntry entry;  // when kind == entry
};

bool starts_with_ci(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (ascii_lower(text[i]) != prefix[i]) return false;
  return true;
}

// "rem" must be a whole word: "ReMo - refs.sys - Mount.c" is an entry for the tag ReMo, not a comment.
bool is_comment(std::string_view line) {
  std::string_view text = trim_left(line);
  if (text.starts_with("//")) return true;
  return starts_with_ci(text, "rem") && (text.size() == 3 || is_space(text[3]));
}

// A tag shorter than 4 characters means the same tag padded with spaces, as poolmon shows it; a '*'
// already covers the rest, so it is left as written.
std::string normalise_pattern(std::string_view tag) {
  std::string pattern(tag);
  if (pattern.find('*') == std::string::npos) pattern.resize(4, ' ');
  return pattern;
}

// Fields after the tag: "binary - description", or only "description" on a two-field line. The
// description may itself hold " - ", so only the first separator splits.
void split_fields(std::string_view rest, TagdbEntry& entry) {
  if (auto separator = find_separator(rest)) {
    entry.binary = std::string(trim(rest.substr(0, separator->begin)));
    entry.description = std::string(trim(rest.substr(separator->end)));
  } else {
    entry.description = std::string(trim(rest));
  }
}

// An entry starts in column 0 with a tag of 1 to 4 characters (spaces inside allowed: "Dh 0") followed by
// a separator, a '-' with whitespace before it. Anything else is free text.
ParsedLine classify_line(std::string_view line) {
  ParsedLine parsed;
  if (trim(line).empty()) {
    parsed.kind = LineKind::blank;
    return parsed;
  }
  if (is_comment(line)) {
    parsed.kind = LineKind::comment;
    return parsed;
  }
  if (is_space(line[0])) return parsed;
  auto separator = find_separator(line);
  if (!separator) return parsed;
  std::string_view tag = trim_right(line.substr(0, separator->begin));
  if (tag.empty() || tag.size() > 4) return parsed;
  parsed.kind = LineKind::entry;
  parsed.entry.pattern = normalise_pattern(tag);
  split_fields(line.substr(separator->end), parsed.entry);
  return parsed;
}

// The text up to a Ctrl-Z, as a text-mode read sees it.
std::string_view until_ctrl_z(std::string_view text, bool& found) {
  size_t end = text.find('\x1a');
  found = end != std::string_view::npos;
  return found ? text.substr(0, end) : text;
}

void count_entry(TagdbFile& file, const TagdbEntry& entry, std::set<std::string>& seen) {
  TagdbStats& stats = file.stats;
  ++stats.entries;
  if (entry.binary.empty()) ++stats.two_field;
  if (entry.has_wildcard()) ++stats.wildcards;
  if (!seen.insert(entry.pattern).second) ++stats.duplicates;
}

}  // namespace

TagdbFile parse_tagdb(std::string_view text, const std::string& source) {
  TagdbFile file;
  file.path = source;
  text = until_ctrl_z(text, file.stats.ctrl_z);
  std::set<std::string> seen;
  size_t number = 0;
  for (std::string_view line : split_lines(text)) {
    ++number;
    if (line.ends_with('\r')) {
      line.remove_suffix(1);
      file.stats.crlf = true;
    }
    ParsedLine parsed = classify_line(line);
    switch (parsed.kind) {
      case LineKind::blank: ++file.stats.blank; break;
      case LineKind::comment: ++file.stats.comments; break;
      case LineKind::free_text:
        ++file.stats.free_text;
        file.free_text.push_back({source, number, std::string(line)});
        break;
      case LineKind::entry:
        parsed.entry.source = source;
        parsed.entry.line = number;
        count_entry(file, parsed.entry, seen);
        file.entries.push_back(std::move(parsed.entry));
        break;
    }
  }
  file.stats.lines = number;
  return file;
}

Result<TagdbFile> load_tagdb_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{"cannot open the pool tag database"};
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) return Error{"cannot read the pool tag database"};
  return parse_tagdb(text, path);
}

}  // namespace tagwho
