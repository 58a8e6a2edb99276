// Writing what the scan proved in pooltag.txt format, so poolmon /g, WinDbg and tagwho itself can read it.
#include <cstdio>
#include <filesystem>

#include "tagwho/tagdb.hpp"
#include "core/format.hpp"

namespace tagwho {
namespace {

// The strongest evidence item, as a short description: "ExAllocatePoolWithTag at +0x1040 (tagwho)".
std::string describe(const Finding& finding) {
  const Evidence& evidence = finding.evidence.front();
  std::string api = evidence.api.empty() ? confidence_name(evidence.kind) : evidence.api;
  return api + " at +" + hex(evidence.rva) + " (tagwho)";
}

// A line is written only if reading it back gives the same tag and names the same file: tags with a '?'
// or '*' would read as wildcards, a leading space or a " - " inside would shift the fields, and bytes
// poolmon cannot show have no text form at all.
bool reads_back(const std::string& line, Tag tag, const std::string& path) {
  TagdbFile file = parse_tagdb(line, "");
  if (file.entries.size() != 1) return false;
  const TagdbEntry& entry = file.entries.front();
  return entry.pattern == tag.display() && !entry.has_wildcard() && entry.names_file(path) &&
         entry.modules().size() == 1;
}

}  // namespace

std::string pooltag_header() {
  return "rem\n"
         "rem    Pool tags proven by tagwho: each tag was recovered as the tag argument of a call to a\n"
         "rem    tag-taking API in the named driver.\n"
         "rem\n"
         "rem    <PoolTag> - <binary-name> - <Description>\n"
         "rem\n";
}

std::string pooltag_lines(const DriverReport& report, std::vector<Tag>* skipped) {
  std::string name = std::filesystem::path(report.path).filename().string();
  std::string text;
  for (const Finding& finding : report.findings) {
    if (finding.best < Confidence::wrapper || finding.evidence.empty()) continue;
    std::string line = finding.tag.display() + " - " + name + " - " + describe(finding) + "\n";
    if (!finding.tag.looks_printable() || !reads_back(line, finding.tag, report.path)) {
      if (skipped) skipped->push_back(finding.tag);
      continue;
    }
    text += line;
  }
  return text;
}

}  // namespace tagwho
