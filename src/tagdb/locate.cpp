// Where the pool tag database comes from, in the order the user's intent is most explicit:
// --tagdb FILE..., $TAGWHO_TAGDB, the tagdb folder installed with tagwho, then Debugging Tools / WDK copies
// of pooltag.txt on a scanned Windows root.
#include <algorithm>
#include <filesystem>
#include <set>
#include <system_error>

#include "tagwho/tagdb.hpp"

namespace tagwho {
namespace {

namespace fs = std::filesystem;

bool is_file(const fs::path& path) {
  std::error_code error;
  return fs::is_regular_file(path, error);
}

bool is_dir(const fs::path& path) {
  std::error_code error;
  return fs::is_directory(path, error);
}

// Every *.txt in a folder, sorted by name so the tie-breaking order never depends on the file system.
std::vector<std::string> text_files_in(const fs::path& dir) {
  std::vector<std::string> files;
  std::error_code error;
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error))
    if (it->path().extension() == ".txt" && is_file(it->path())) files.push_back(it->path().string());
  std::sort(files.begin(), files.end());
  return files;
}

Result<TagdbChoice> from_environment(const std::string& value) {
  if (is_dir(value)) {
    std::vector<std::string> files = text_files_in(value);
    if (files.empty()) return Error{"$TAGWHO_TAGDB: " + value + ": no *.txt file in this folder"};
    return TagdbChoice{files, "$TAGWHO_TAGDB"};
  }
  if (is_file(value)) return TagdbChoice{{value}, "$TAGWHO_TAGDB"};
  return Error{"$TAGWHO_TAGDB: " + value + ": no such file or folder"};
}

// The scanned path, then each folder above it: a scan of <root>/Windows/System32/drivers finds the kit
// installed under <root>. Up to the first path `seen` holds (the folders above it were listed with it:
// hundreds of files named in one folder have their folders looked at once), and each is added to it.
std::vector<fs::path> self_and_ancestors(const std::string& scanned, std::set<fs::path>& seen) {
  std::vector<fs::path> paths;
  std::error_code error;
  fs::path path = fs::absolute(scanned, error);
  if (error) return paths;
  path = path.lexically_normal();
  while (seen.insert(path).second) {
    if (is_dir(path)) paths.push_back(path);
    if (!path.has_relative_path()) break;
    fs::path parent = path.parent_path();
    if (parent == path) break;
    path = parent;
  }
  return paths;
}

std::optional<std::string> kit_under(const std::vector<std::string>& roots) {
  std::set<fs::path> seen;
  for (const std::string& scanned : roots)
    for (const fs::path& root : self_and_ancestors(scanned, seen))
      for (const std::string& candidate : windows_kit_tagdb_paths(root.string()))
        if (is_file(candidate)) return candidate;
  return std::nullopt;
}

}  // namespace

std::vector<std::string> windows_kit_tagdb_paths(const std::string& root) {
  const fs::path base(root);
  std::vector<std::string> paths;
  for (const char* program_files : {"Program Files (x86)", "Program Files"}) {
    for (const char* kit : {"10", "8.1", "8.0"})
      for (const char* arch : {"x64", "x86", "arm64"})
        paths.push_back((base / program_files / "Windows Kits" / kit / "Debuggers" / arch / "triage" / "pooltag.txt").string());
    for (const char* tools : {"Debugging Tools for Windows (x64)", "Debugging Tools for Windows (x86)",
                              "Debugging Tools for Windows"})
      paths.push_back((base / program_files / tools / "triage" / "pooltag.txt").string());
  }
  // Old WDKs: <root>/WinDDK/<build>/tools/other/<arch>/pooltag.txt, one folder per installed build.
  std::error_code error;
  std::vector<fs::path> ddks;
  for (fs::directory_iterator it(base / "WinDDK", error), end; !error && it != end; it.increment(error))
    ddks.push_back(it->path());
  std::sort(ddks.rbegin(), ddks.rend());  // newest build first
  for (const fs::path& ddk : ddks)
    for (const char* arch : {"amd64", "i386", "arm"})
      paths.push_back((ddk / "tools" / "other" / arch / "pooltag.txt").string());
  return paths;
}

Result<TagdbChoice> choose_tagdb(const TagdbSources& sources) {
  if (!sources.explicit_files.empty()) {
    for (const std::string& file : sources.explicit_files)
      if (!is_file(file)) return Error{"--tagdb " + file + ": no such file"};
    return TagdbChoice{sources.explicit_files, "--tagdb"};
  }
  if (sources.environment && !sources.environment->empty()) return from_environment(*sources.environment);
  for (const std::string& dir : sources.installed_dirs) {
    std::vector<std::string> files = text_files_in(dir);
    if (!files.empty()) return TagdbChoice{files, "installed"};
  }
  std::vector<std::string> roots = sources.scan_roots;
#ifdef _WIN32
  roots.push_back("C:/");
#endif
  if (auto kit = kit_under(roots)) return TagdbChoice{{*kit}, "Windows kit"};
  return TagdbChoice{};
}

Result<Tagdb> load_tagdb(const TagdbChoice& choice) {
  Tagdb tagdb;
  for (const std::string& path : choice.files) {
    Result<TagdbFile> file = load_tagdb_file(path);
    if (!file) return Error{path + ": " + file.error()};
    tagdb.add(std::move(*file));
  }
  return tagdb;
}

}  // namespace tagwho
