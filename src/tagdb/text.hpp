// Small text helpers shared by the pooltag.txt reader and writer (ASCII only: the format is ASCII).
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tagwho {

inline bool is_space(char c) { return c == ' ' || c == '\t'; }
inline char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

inline std::string_view trim_left(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  return text;
}
inline std::string_view trim_right(std::string_view text) {
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}
inline std::string_view trim(std::string_view text) { return trim_left(trim_right(text)); }

// A field separator: whitespace, '-', then whitespace or the end of the line. [begin, end) covers it.
// The whitespace before the '-' is what keeps hyphens inside names ("leak-x64.sys") from splitting.
struct Separator {
  size_t begin = 0;
  size_t end = 0;
};

inline std::optional<Separator> find_separator(std::string_view text) {
  for (size_t i = 1; i < text.size(); ++i) {
    if (!is_space(text[i])) continue;
    size_t dash = i;
    while (dash < text.size() && is_space(text[dash])) ++dash;
    if (dash < text.size() && text[dash] == '-' && (dash + 1 == text.size() || is_space(text[dash + 1])))
      return Separator{i, dash + 1};
    i = dash - 1;  // the loop's ++i lands on the first character after the whitespace run
  }
  return std::nullopt;
}

// Lines split at '\n' (a final line without '\n' counts; an empty text after the last '\n' does not).
inline std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

}  // namespace tagwho
