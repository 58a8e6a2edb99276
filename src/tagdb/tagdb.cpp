// Entries and lookup: pattern matching, specificity, and which files an entry's binary field names.
#include <algorithm>
#include <array>
#include <filesystem>

#include "tagdb/text.hpp"
#include "tagwho/tagdb.hpp"

namespace tagwho {
namespace {

std::array<char, 4> tag_bytes(Tag tag) {
  return {static_cast<char>(tag.value & 0xff), static_cast<char>(tag.value >> 8 & 0xff),
          static_cast<char>(tag.value >> 16 & 0xff), static_cast<char>(tag.value >> 24 & 0xff)};
}

// Glob over the tag's four bytes: '?' one byte, '*' any run (so "Bu*" covers "Bu  " and "Bu12").
bool glob(std::string_view pattern, std::string_view text) {
  if (pattern.empty()) return text.empty();
  if (pattern.front() == '*')
    return glob(pattern.substr(1), text) || (!text.empty() && glob(pattern, text.substr(1)));
  if (text.empty()) return false;
  if (pattern.front() != '?' && pattern.front() != text.front()) return false;
  return glob(pattern.substr(1), text.substr(1));
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

// "a.sys/b.sys", "nt!store or rdyboost.sys", "a.sys, b.sys": the separators seen in the real file.
std::vector<std::string_view> split_binaries(std::string_view field) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t next = field.size(), skip = 0;
    for (size_t i = start; i < field.size() && !skip; ++i) {
      if (field[i] == '/' || field[i] == ',') next = i, skip = 1;
      else if (field.substr(i).starts_with(" or ")) next = i, skip = 4;
    }
    parts.push_back(trim(field.substr(start, next - start)));
    if (!skip) return parts;
    start = next + skip;
  }
}

// "<nvlddmkm.sys>" -> "nvlddmkm.sys"; "win32k!Func" -> "win32k"; "<unknown>" -> "".
std::string module_of(std::string_view name) {
  if (name.size() >= 2 && name.front() == '<' && name.back() == '>') name = name.substr(1, name.size() - 2);
  name = name.substr(0, name.find('!'));
  std::string module = lower(trim(name));
  return module == "unknown" || module == "multiple" ? "" : module;
}

// Module names compare by stem, so "win32k" names win32k.sys. A static library (.lib) is linked into other
// binaries, so it never names a scanned file.
std::optional<std::string> module_stem(const std::string& module) {
  size_t dot = module.rfind('.');
  if (dot == std::string::npos) return module;
  if (module.substr(dot + 1) == "lib") return std::nullopt;
  return module.substr(0, dot);
}

bool is_kernel_stem(std::string_view stem) {
  return stem == "ntoskrnl" || stem == "ntkrnlmp" || stem == "ntkrnlpa" || stem == "ntkrpamp";
}

}  // namespace

bool TagdbEntry::matches(Tag tag) const {
  std::array<char, 4> bytes = tag_bytes(tag);
  return glob(pattern, std::string_view(bytes.data(), bytes.size()));
}

int TagdbEntry::specificity() const {
  int literal = 0;
  for (char c : pattern) {
    if (c == '*') return literal * 2;
    if (c != '?') ++literal;
  }
  return literal * 2 + 1;
}

std::vector<std::string> TagdbEntry::modules() const {
  std::vector<std::string> modules;
  for (std::string_view part : split_binaries(binary)) {
    std::string module = module_of(part);
    if (!module.empty()) modules.push_back(module);
  }
  return modules;
}

bool TagdbEntry::names_file(std::string_view path) const {
  std::string stem = lower(std::filesystem::path(path).stem().string());
  for (const std::string& module : modules()) {
    if (module == "nt" && is_kernel_stem(stem)) return true;
    if (module_stem(module) == stem) return true;
  }
  return false;
}

void Tagdb::add(TagdbFile file) {
  for (TagdbEntry& entry : file.entries) entry.file_index = files_.size();
  files_.push_back(std::move(file));
}

size_t Tagdb::entry_count() const {
  size_t count = 0;
  for (const TagdbFile& file : files_) count += file.entries.size();
  return count;
}

std::vector<const TagdbEntry*> Tagdb::all_matches(Tag tag) const {
  std::vector<const TagdbEntry*> matches;
  for (const TagdbFile& file : files_)
    for (const TagdbEntry& entry : file.entries)
      if (entry.matches(tag)) matches.push_back(&entry);
  // Most specific first, later files first among equals, then file order (stable).
  std::stable_sort(matches.begin(), matches.end(), [](const TagdbEntry* a, const TagdbEntry* b) {
    if (a->specificity() != b->specificity()) return a->specificity() > b->specificity();
    return a->file_index > b->file_index;
  });
  return matches;
}

std::vector<const TagdbEntry*> Tagdb::lookup(Tag tag) const {
  std::vector<const TagdbEntry*> matches = all_matches(tag);
  if (matches.empty()) return matches;
  const TagdbEntry& best = *matches.front();
  std::erase_if(matches, [&](const TagdbEntry* entry) {
    return entry->specificity() != best.specificity() || entry->file_index != best.file_index;
  });
  return matches;
}

std::vector<const TagdbEntry*> Tagdb::entries_naming(std::string_view path) const {
  std::vector<const TagdbEntry*> entries;
  for (const TagdbFile& file : files_)
    for (const TagdbEntry& entry : file.entries)
      if (entry.names_file(path)) entries.push_back(&entry);
  return entries;
}

}  // namespace tagwho
