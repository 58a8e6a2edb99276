#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "tagwho/scan.hpp"

namespace tagwho {
namespace {

namespace fs = std::filesystem;

void walk_directory(const fs::path& directory, std::vector<InputFile>& files, std::vector<WalkProblem>& problems) {
  std::error_code error;
  fs::directory_iterator iterator(directory, fs::directory_options::none, error);
  if (error) {
    problems.push_back({directory.string(), "cannot read directory: " + error.message()});
    return;
  }
  std::vector<fs::directory_entry> entries;
  for (; iterator != fs::directory_iterator(); iterator.increment(error)) {
    if (error) {
      problems.push_back({directory.string(), "cannot read directory: " + error.message()});
      break;
    }
    entries.push_back(*iterator);
  }
  std::sort(entries.begin(), entries.end(),
            [](const fs::directory_entry& a, const fs::directory_entry& b) { return a.path() < b.path(); });
  for (const fs::directory_entry& entry : entries) {
    // symlink_status: a symlinked directory is never entered, so link loops cannot trap the walk.
    fs::file_status link_status = entry.symlink_status(error);
    if (error) {
      problems.push_back({entry.path().string(), "cannot stat: " + error.message()});
      continue;
    }
    if (fs::is_directory(link_status)) {
      walk_directory(entry.path(), files, problems);
    } else if (fs::is_symlink(link_status)) {
      fs::file_status target = entry.status(error);
      if (!error && fs::is_regular_file(target)) files.push_back({entry.path().string(), false});
    } else if (fs::is_regular_file(link_status)) {
      files.push_back({entry.path().string(), false});
    }
    // FIFOs, sockets and devices are skipped without being opened: reading them could block forever.
  }
}

}  // namespace

std::vector<InputFile> walk_inputs(const std::vector<std::string>& paths, std::vector<WalkProblem>& problems) {
  std::vector<InputFile> files;
  for (const std::string& path : paths) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) {
      problems.push_back({path, std::strerror(errno)});
    } else if (S_ISDIR(info.st_mode)) {
      walk_directory(fs::path(path), files, problems);
    } else if (S_ISREG(info.st_mode)) {
      files.push_back({path, true});
    } else {
      problems.push_back({path, "not a regular file or directory (skipped)"});
    }
  }
  return files;
}

}  // namespace tagwho
