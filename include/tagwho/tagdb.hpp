// The pool tag database: Microsoft's pooltag.txt format ("Tag - binary - description"), read the way
// poolmon /g and WinDbg's !pool read it, looked up with the most specific pattern winning, joined with
// scan results, and written back in the same format.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tagwho/evidence.hpp"
#include "tagwho/result.hpp"
#include "tagwho/tag.hpp"

namespace tagwho {

// One entry line. The pattern is the tag as written, padded to 4 characters with spaces unless it holds a
// '*' ("Cc" -> "Cc  ", "Bu*" stays "Bu*"); '?' matches one byte, '*' any number; letters are case-sensitive.
struct TagdbEntry {
  std::string pattern;
  std::string binary;        // the binary field as written ("" on a two-field line)
  std::string description;   // "" when the line has no description
  std::string source;        // file the entry came from
  size_t line = 0;           // 1-based
  size_t file_index = 0;     // position of source among the loaded files: later files win ties

  bool matches(Tag tag) const;
  bool has_wildcard() const { return pattern.find_first_of("?*") != std::string::npos; }
  // Higher is more specific: literal characters count twice, a fixed length ('?' only) once more.
  int specificity() const;
  // The modules the binary field names: "a.sys/b.sys" -> {"a.sys","b.sys"}; "nt!store or rdyboost.sys" ->
  // {"nt","rdyboost.sys"}; "win32k!Func" -> {"win32k"}; "<unknown>" -> {}.
  std::vector<std::string> modules() const;
  // True when the binary field names the file at path (file name compared without case or extension;
  // "nt" names the kernel images ntoskrnl.exe, ntkrnlmp.exe, ntkrnlpa.exe, ntkrpamp.exe).
  bool names_file(std::string_view path) const;
};

// A line that is neither an entry, a comment nor blank: reported, never guessed at.
struct TagdbFreeText {
  std::string source;
  size_t line = 0;
  std::string text;
};

struct TagdbStats {
  size_t lines = 0;        // lines before the end of the file (a Ctrl-Z ends it, as in a text-mode read)
  size_t entries = 0;
  size_t two_field = 0;    // entries with only "Tag - text"
  size_t comments = 0;     // rem and // lines
  size_t blank = 0;
  size_t free_text = 0;
  size_t wildcards = 0;    // entries whose pattern holds ? or *
  size_t duplicates = 0;   // entries whose exact pattern appeared earlier in the same file
  bool ctrl_z = false;     // the file ended with a Ctrl-Z
  bool crlf = false;       // at least one line ended with CR LF
};

struct TagdbFile {
  std::string path;
  std::vector<TagdbEntry> entries;  // in file order, duplicates kept
  std::vector<TagdbFreeText> free_text;
  TagdbStats stats;
};

// Parses pooltag.txt text. Never fails: every line is an entry, a comment, blank, or reported free text.
TagdbFile parse_tagdb(std::string_view text, const std::string& source);
// Reads and parses a file; an error when it cannot be read.
Result<TagdbFile> load_tagdb_file(const std::string& path);

// Several files merged; later files win ties between equally specific entries.
class Tagdb {
 public:
  void add(TagdbFile file);
  const std::vector<TagdbFile>& files() const { return files_; }
  bool empty() const { return files_.empty(); }
  size_t entry_count() const;

  // The entries poolmon would name for the tag: the most specific matching pattern wins; equally
  // specific entries from the latest file that has any are all kept (duplicates are real data).
  std::vector<const TagdbEntry*> lookup(Tag tag) const;
  // Every entry whose pattern matches, most specific first (for explaining a lookup).
  std::vector<const TagdbEntry*> all_matches(Tag tag) const;
  // Entries whose binary field names the file.
  std::vector<const TagdbEntry*> entries_naming(std::string_view path) const;

 private:
  std::vector<TagdbFile> files_;
};

// --- Where the database comes from -----------------------------------------------------------------

struct TagdbSources {
  std::vector<std::string> explicit_files;  // --tagdb FILE..., in order
  std::optional<std::string> environment;   // $TAGWHO_TAGDB (a file, or a folder of *.txt)
  std::vector<std::string> installed_dirs;  // the tagdb folder(s) installed with tagwho, first found wins
  std::vector<std::string> scan_roots;      // scanned paths: Windows roots that may hold Debugging Tools
};

struct TagdbChoice {
  std::vector<std::string> files;  // to load, in order (empty: none found)
  std::string origin;              // "--tagdb", "$TAGWHO_TAGDB", "installed", "Windows kit"
};

// Picks the database per the order --tagdb, $TAGWHO_TAGDB, installed folder, Debugging Tools/WDK under a
// scanned Windows root (or the running Windows). Explicit names that do not exist are an error.
Result<TagdbChoice> choose_tagdb(const TagdbSources& sources);
// The Debugging Tools / WDK places pooltag.txt is installed to, below a Windows root ("C:/" or a mount).
std::vector<std::string> windows_kit_tagdb_paths(const std::string& root);
// Loads every chosen file, in order.
Result<Tagdb> load_tagdb(const TagdbChoice& choice);

// --- Join with scan results ------------------------------------------------------------------------

// What the database says about one finding.
struct TagdbJoin {
  std::vector<const TagdbEntry*> entries;  // lookup() of the tag
  bool names_file = false;                 // one of them names the finding's file
  bool proven = false;                     // the scan has call or wrapper evidence
  // The scan proves the tag in a driver the database does not name for it.
  bool disagrees() const { return proven && !names_file; }
};
TagdbJoin join_finding(const Tagdb& tagdb, const Finding& finding, std::string_view path);

// Database entries naming a scanned file in which the scan found nothing for the tag.
struct UnprovenEntry {
  Tag tag;                                 // the tag searched for
  std::vector<const TagdbEntry*> entries;  // the entries for it that name the file
  const DriverReport* report = nullptr;
};
// Search: for each tag asked, the entries naming a scanned file that has no finding for that tag.
std::vector<UnprovenEntry> unproven_search(const Tagdb& tagdb, const std::vector<Tag>& tags,
                                           const std::vector<const DriverReport*>& reports);
// Driver listing: the entries naming this file whose pattern matches none of its findings.
std::vector<const TagdbEntry*> unproven_driver(const Tagdb& tagdb, const DriverReport& report);

// Tags a driver uses with call or wrapper evidence that the database does not know at all.
std::vector<const Finding*> unknown_findings(const Tagdb& tagdb, const DriverReport& report);

// --- Writing pooltag.txt ---------------------------------------------------------------------------

// A header of rem lines saying the file was written by tagwho.
std::string pooltag_header();
// One line per (tag, driver) with call/wrapper evidence:
// "Leak - leak.sys - ExAllocatePoolWithTag at +0x1040 (tagwho)". Tags that are not printable, or whose
// characters would not read back (a '-' or '?' or '*'), are skipped and returned in `skipped`.
std::string pooltag_lines(const DriverReport& report, std::vector<Tag>* skipped = nullptr);

}  // namespace tagwho
