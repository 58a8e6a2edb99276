// Reading poolmon -n snapshots and !poolused output. Rows are read by their fixed tag (and type) columns,
// never by splitting on whitespace, because tags hold spaces ("Dh 0", "Cc  "); the numbers after them are
// read one by one, so widths that overflowed (a 10-digit count in a 9-wide column) still read.
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>

#include "tagwho/poolmon.hpp"

namespace tagwho {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && (is_space(text.front()) || text.front() == '\r')) text.remove_prefix(1);
  while (!text.empty() && (is_space(text.back()) || text.back() == '\r')) text.remove_suffix(1);
  return text;
}

bool starts_with(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

std::vector<std::string_view> words(std::string_view text) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) ++i;
    size_t start = i;
    while (i < text.size() && !is_space(text[i])) ++i;
    if (i > start) out.push_back(text.substr(start, i - start));
  }
  return out;
}

Tag tag_of(std::string_view four) {
  uint32_t value = 0;
  for (size_t i = 0; i < 4; ++i) value |= uint32_t(static_cast<unsigned char>(four[i])) << (8 * i);
  return Tag{value};
}

// Reads numbers from the text after the tag (and type) columns.
class NumberReader {
 public:
  explicit NumberReader(std::string_view text) : text_(text) {}

  void skip_space() {
    while (pos_ < text_.size() && is_space(text_[pos_])) ++pos_;
  }
  // A (possibly negative) decimal number after optional spaces; false when there is none.
  bool number(int64_t& value) {
    skip_space();
    size_t start = pos_;
    bool negative = pos_ < text_.size() && text_[pos_] == '-';
    if (negative) ++pos_;
    if (pos_ >= text_.size() || !is_digit(text_[pos_])) {
      pos_ = start;
      return false;
    }
    uint64_t magnitude = 0;
    while (pos_ < text_.size() && is_digit(text_[pos_])) {
      magnitude = magnitude * 10 + uint64_t(text_[pos_] - '0');
      if (magnitude > uint64_t(INT64_MAX)) return false;
      ++pos_;
    }
    value = negative ? -int64_t(magnitude) : int64_t(magnitude);
    return true;
  }
  // The interactive display's "(   0)" delta after a number; true when one was skipped.
  bool delta() {
    size_t save = pos_;
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == '(') {
      size_t close = text_.find(')', pos_);
      if (close != std::string_view::npos) {
        int64_t ignored = 0;
        NumberReader inner(text_.substr(pos_ + 1, close - pos_ - 1));
        if (inner.number(ignored)) {
          inner.skip_space();
          if (inner.at_end()) {
            pos_ = close + 1;
            return true;
          }
        }
      }
    }
    pos_ = save;
    return false;
  }
  bool at_end() const { return pos_ >= text_.size(); }
  bool at_space() const { return pos_ < text_.size() && is_space(text_[pos_]); }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  std::string_view rest() const { return text_.substr(pos_); }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

// " Tag  Type  Allocs ... Per Alloc [Mapped_Driver]": which layout the widths say.
struct PoolmonHeader {
  bool seen = false;
  bool mapped_driver = false;
  PoolLogLayout layout = PoolLogLayout::unknown;
};

bool parse_poolmon_header(std::string_view line, PoolmonHeader& header) {
  std::vector<std::string_view> w = words(line);
  if (w.size() < 7 || w[0] != "Tag" || w[1] != "Type" || w[2] != "Allocs" || w[3] != "Frees" || w[4] != "Diff" ||
      w[5] != "Bytes")
    return false;
  header.seen = true;
  header.mapped_driver = line.find("Mapped_Driver") != std::string_view::npos;
  // 64-bit: "Allocs" then 12 spaces to "Frees"; 32-bit: 9. The interactive display is told by its rows.
  size_t allocs = line.find("Allocs"), frees = line.find("Frees");
  header.layout = frees - allocs >= 16 ? PoolLogLayout::poolmon_x64 : PoolLogLayout::poolmon_x86;
  return true;
}

// " %4s %5s %N d %N d  %N d %N d     %N d        %s": tag at column 1, type at column 6.
bool parse_poolmon_row(std::string_view line, const PoolmonHeader& header, std::vector<PoolRow>& rows, size_t number) {
  if (line.size() < 12 || line[0] != ' ' || line[5] != ' ') return false;
  std::string_view type = line.substr(6, 5);
  PoolKind kind;
  if (type == "Nonp " || type == "Nonp") kind = PoolKind::nonpaged;
  else if (type == "Paged") kind = PoolKind::paged;
  else return false;
  if (!is_space(line[11])) return false;
  NumberReader reader(line.substr(11));
  int64_t values[5];
  bool interactive = false;
  for (int i = 0; i < 5; ++i) {
    if (!reader.number(values[i])) return false;
    if (!reader.at_end() && !reader.at_space() && reader.peek() != '(') return false;
    // Allocs, Frees and Bytes carry a "( delta )" in the interactive display.
    if (i == 0 || i == 1 || i == 3) interactive = reader.delta() || interactive;
  }
  if (!reader.at_end() && !reader.at_space()) return false;
  PoolRow row;
  row.tag_text = std::string(line.substr(1, 4));
  row.tag = tag_of(row.tag_text);
  row.kind = kind;
  row.allocs = values[0];
  row.frees = values[1];
  row.outstanding = values[2];
  row.bytes = values[3];
  row.note = std::string(trim(reader.rest()));
  if (interactive) {
    row.layout = PoolLogLayout::poolmon_interactive;
  } else if (header.seen) {
    row.layout = header.layout;
  } else {
    // No header: the end of the Allocs number tells the widths (column 30 on 64-bit, 21 on 32-bit).
    size_t end = line.find_first_of(" \t", line.find_first_not_of(" \t", 11));
    row.layout = end != std::string_view::npos && end >= 26 ? PoolLogLayout::poolmon_x64 : PoolLogLayout::poolmon_x86;
  }
  row.line = number;
  rows.push_back(row);
  return true;
}

// "Tag    Allocs     Used    Allocs     Used": where !poolused puts its tag column.
bool parse_poolused_header(std::string_view line, std::optional<size_t>& tag_column) {
  std::vector<std::string_view> w = words(line);
  if (w.size() != 5 || w[0] != "Tag" || w[1] != "Allocs" || w[2] != "Used" || w[3] != "Allocs" || w[4] != "Used")
    return false;
  tag_column = line.find("Tag");
  return true;
}

// " %4s %8d %8d %8d %8d<description>": the tag at `column`, then nonpaged allocs and bytes, paged allocs and
// bytes; the description follows the last number directly (old) or after a TAB (new).
bool parse_poolused_at(std::string_view line, size_t column, std::vector<PoolRow>& rows, size_t number) {
  if (line.size() < column + 5) return false;
  for (size_t i = 0; i < column; ++i)
    if (line[i] != ' ') return false;
  if (line[column] == ' ' && line.substr(column, 4) == "    ") return false;
  if (!is_space(line[column + 4])) return false;
  NumberReader reader(line.substr(column + 4));
  int64_t values[4];
  for (int i = 0; i < 4; ++i) {
    if (!reader.number(values[i]) || values[i] < 0) return false;
    if (i < 3 && !reader.at_space()) return false;
  }
  std::string_view rest = reader.rest();
  bool tab = !rest.empty() && rest.front() == '\t';
  std::string tag_text(line.substr(column, 4));
  std::string note(trim(rest));
  for (PoolKind kind : {PoolKind::nonpaged, PoolKind::paged}) {
    PoolRow row;
    row.tag_text = tag_text;
    row.tag = tag_of(tag_text);
    row.tag_uncertain = tag_text.find('.') != std::string::npos;
    row.kind = kind;
    row.outstanding = kind == PoolKind::nonpaged ? values[0] : values[2];
    row.bytes = kind == PoolKind::nonpaged ? values[1] : values[3];
    row.note = note;
    row.layout = tab ? PoolLogLayout::poolused_new : PoolLogLayout::poolused_old;
    row.line = number;
    rows.push_back(row);
  }
  return true;
}

bool parse_poolused_row(std::string_view line, std::optional<size_t> header_column, std::vector<PoolRow>& rows,
                        size_t number) {
  // The header's column first; a block pasted without its header may sit one column off.
  size_t first = header_column.value_or(line.empty() || line[0] != ' ' ? 0 : 1);
  if (parse_poolused_at(line, first, rows, number)) return true;
  return first <= 1 && parse_poolused_at(line, 1 - first, rows, number);
}

// Lines that belong to the formats but hold no row.
bool is_known_line(std::string_view line) {
  std::string_view text = trim(line);
  if (text.empty()) return true;
  // poolmon: the summary (-r) lines and the interactive display's title
  if (starts_with(text, "Memory:") || starts_with(text, "Commit:") || text == "System pool information") return true;
  // !poolused: the debugger prompt ("0: kd> !poolused", "kd> ", "lkd> "), sorting note, column titles
  size_t prompt = text.find("kd> ");
  if (prompt != std::string_view::npos && (starts_with(text, "kd>") || starts_with(text, "lkd>") ||
                                           (prompt > 0 && text.substr(0, prompt).find(": ") != std::string_view::npos)))
    return true;
  if (starts_with(text, "Sorting by") || text == "Pool Used:") return true;
  std::vector<std::string_view> w = words(text);
  if (w.size() == 2 && w[0] == "NonPaged" && w[1] == "Paged") return true;
  // "TOTAL  allocs used allocs used"
  if (w.size() == 5 && w[0] == "TOTAL") {
    NumberReader reader(text.substr(5));
    int64_t value = 0;
    for (int i = 0; i < 4; ++i)
      if (!reader.number(value)) return false;
    return true;
  }
  return false;
}

}  // namespace

const char* pool_kind_name(PoolKind kind) { return kind == PoolKind::paged ? "Paged" : "Nonp"; }

const char* pool_log_layout_name(PoolLogLayout layout) {
  switch (layout) {
    case PoolLogLayout::poolmon_x64: return "poolmon-x64";
    case PoolLogLayout::poolmon_x86: return "poolmon-x86";
    case PoolLogLayout::poolmon_interactive: return "poolmon-interactive";
    case PoolLogLayout::poolused_old: return "poolused-old";
    case PoolLogLayout::poolused_new: return "poolused-new";
    case PoolLogLayout::unknown: break;
  }
  return "unknown";
}

PoolSnapshot parse_pool_log(std::string_view text, const std::string& source) {
  PoolSnapshot snapshot;
  snapshot.source = source;
  PoolmonHeader poolmon_header;
  std::optional<size_t> poolused_column;
  size_t number = 0;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (trim(line).empty()) continue;
    if (parse_poolmon_header(line, poolmon_header)) {
      snapshot.mapped_driver = snapshot.mapped_driver || poolmon_header.mapped_driver;
      continue;
    }
    if (parse_poolused_header(line, poolused_column)) continue;
    if (parse_poolmon_row(line, poolmon_header, snapshot.rows, number)) continue;
    if (parse_poolused_row(line, poolused_column, snapshot.rows, number)) continue;
    if (is_known_line(line)) {
      std::string_view t = trim(line);
      if (starts_with(t, "Memory:") || starts_with(t, "Commit:")) snapshot.summary = true;
      continue;
    }
    snapshot.unrecognised.push_back({number, std::string(line)});
  }
  if (!snapshot.rows.empty()) snapshot.layout = snapshot.rows.front().layout;
  // The same (tag, pool) twice: the later row is what the series uses; count the repeats.
  std::map<std::pair<uint32_t, int>, size_t> seen;
  for (const PoolRow& row : snapshot.rows)
    if (seen[{row.tag.value, int(row.kind)}]++) ++snapshot.duplicates;
  return snapshot;
}

Result<PoolSnapshot> load_pool_log(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{"cannot read the log"};
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) return Error{"cannot read the log"};
  PoolSnapshot snapshot = parse_pool_log(content.str(), path);
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0) snapshot.time = int64_t(info.st_mtime);
  return snapshot;
}

namespace {

// Natural order: digit runs compare as numbers ("log9" < "log10"), everything else byte by byte.
int natural_compare(std::string_view a, std::string_view b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (is_digit(a[i]) && is_digit(b[j])) {
      size_t si = i, sj = j;
      while (si < a.size() && a[si] == '0') ++si;
      while (sj < b.size() && b[sj] == '0') ++sj;
      size_t ei = si, ej = sj;
      while (ei < a.size() && is_digit(a[ei])) ++ei;
      while (ej < b.size() && is_digit(b[ej])) ++ej;
      if (ei - si != ej - sj) return ei - si < ej - sj ? -1 : 1;
      int c = a.substr(si, ei - si).compare(b.substr(sj, ej - sj));
      if (c) return c < 0 ? -1 : 1;
      i = ei;
      j = ej;
      continue;
    }
    if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]) ? -1 : 1;
    ++i;
    ++j;
  }
  if (i < a.size()) return 1;
  if (j < b.size()) return -1;
  return 0;
}

std::string_view base_name(std::string_view path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace

void order_pool_logs(std::vector<PoolSnapshot>& snapshots, PoolOrder order) {
  auto by_name = [](const PoolSnapshot& a, const PoolSnapshot& b) {
    int c = natural_compare(base_name(a.source), base_name(b.source));
    if (c) return c < 0;
    return a.source < b.source;
  };
  std::stable_sort(snapshots.begin(), snapshots.end(), [&](const PoolSnapshot& a, const PoolSnapshot& b) {
    if (order == PoolOrder::mtime) {
      int64_t ta = a.time.value_or(INT64_MIN), tb = b.time.value_or(INT64_MIN);
      if (ta != tb) return ta < tb;
    }
    return by_name(a, b);
  });
}

}  // namespace tagwho
