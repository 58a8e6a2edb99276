// From the user's PATHs to input files: plain files and folders, mounted Windows roots, disk images.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "core/budget.hpp"
#include "core/schedule.hpp"
#include "source/folder.hpp"
#include "source/image.hpp"
#include "source/tree.hpp"
#include "tagwho/source.hpp"

namespace tagwho {
namespace {

SourceFile plain_file(const std::string& path, bool explicit_path) {
  SourceFile file;
  file.path = path;
  file.host_path = path;
  file.explicit_path = explicit_path;
  file.reader = source::folder_reader();
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0) {
    file.size = static_cast<uint64_t>(info.st_size);
    file.mtime = static_cast<int64_t>(info.st_mtime);
  }
  return file;
}

bool starts_with_mz(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char head[2] = {};
  return in.read(head, 2) && head[0] == 'M' && head[1] == 'Z';
}

}  // namespace

ByteView FileBytes::view() const {
  if (const auto* mapped = std::get_if<MappedFile>(&storage_)) return mapped->view();
  const auto& buffer = std::get<std::vector<uint8_t>>(storage_);
  return ByteView(buffer.data(), buffer.size());
}

WindowReader FileBytes::windows() const {
  if (const auto* mapped = std::get_if<MappedFile>(&storage_)) return mapped->windows();
  return WindowReader(view());
}

std::optional<std::string> FileBytes::read_failure() const {
  const auto* mapped = std::get_if<MappedFile>(&storage_);
  return mapped ? mapped->read_failure() : std::nullopt;
}

Result<FileBytes> SourceFile::read() const {
  if (!reader) return Error{"no reader for this file"};
  return reader->read(*this);
}

SourceList open_sources(const std::vector<std::string>& paths) {
  SourceList out;
  for (const std::string& path : paths) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) {
      out.problems.push_back({path, std::strerror(errno)});
    } else if (S_ISDIR(info.st_mode)) {
      source::FolderTree tree(path);
      if (source::is_windows_root(tree)) {
        source::collect_windows_root(tree, out);
        continue;
      }
      std::vector<WalkProblem> problems;
      for (const InputFile& input : walk_inputs({path}, problems)) out.files.push_back(plain_file(input.path, false));
      out.problems.insert(out.problems.end(), problems.begin(), problems.end());
    } else if (S_ISREG(info.st_mode)) {
      if (starts_with_mz(path) || !source::looks_like_image(path)) {
        out.files.push_back(plain_file(path, true));  // a PE, or not: the scanner says which
        continue;
      }
      auto trees = source::open_image(path);
      if (!trees) {
        out.problems.push_back({path, trees.error()});
        continue;
      }
      for (const auto& tree : *trees) source::collect_windows_root(*tree, out);
    } else {
      out.problems.push_back({path, "not a regular file or directory (skipped)"});
    }
  }
  return out;
}

FileResult analyse_source(const Scanner& scanner, const SourceFile& file) {
  return analyse_source(scanner, file, file.read());
}

FileResult analyse_source(const Scanner& scanner, const SourceFile& file, const Result<FileBytes>& bytes) {
  FileResult result;
  if (!bytes) {
    result.report.path = file.path;
    result.report.size = file.size;
    result.report.errors.push_back(bytes.error());
  } else {
    WindowReader windows = bytes->windows();
    result = scanner.analyse_bytes(file.path, bytes->view(), &windows);
    if (auto failure = bytes->read_failure()) result = failed_read(file.path, bytes->view().size(), *failure);
  }
  result.report.service = file.service;
  return result;
}

using budget::kLargeFile;

std::vector<FileResult> scan_sources(const Scanner& scanner, const std::vector<SourceFile>& files, unsigned threads) {
  // Largest first, one large file at a time; the results still land in input order, so the output is the
  // same whatever the thread count.
  std::vector<FileResult> results(files.size());
  run_largest_first(
      files.size(), threads, [&](size_t i) { return files[i].size; },
      [&](size_t i) { results[i] = analyse_source(scanner, files[i]); });
  return results;
}

// Results waiting for an earlier file before they can be delivered: at most this many files ahead of the
// first undelivered one, and no more than this much input between the waiting results (a driver listing's
// result holds every tag's evidence, several times the file's size). The first undelivered file may always
// be taken. 16 MB of input: with 32, the listing's peak memory on the benchmark corpus doubled went from
// 216 MB to 231-239 MB, depending on how far the other thread got while a large file was analysed; with 16,
// to 218-227 MB, for some 3% of the single corpus's listing time.
constexpr size_t kWindowFiles = 64;
constexpr uint64_t kWindowBytes = 16ull << 20;

void scan_sources_in_order(const Scanner& scanner, const std::vector<SourceFile>& files, unsigned threads,
                           const std::function<void(size_t, FileResult&)>& deliver) {
  std::mutex lock;
  std::condition_variable changed;
  std::map<size_t, FileResult> ready;  // analysed, waiting for an earlier file
  size_t delivered = 0;                // files [0, delivered) are delivered
  std::set<size_t> untaken;            // files not yet taken (all of them from `delivered` on, some before)
  for (size_t i = 0; i < files.size(); ++i) untaken.insert(i);
  uint64_t ready_bytes = 0;            // input bytes of the results in `ready`
  bool large_held = false;             // a large file is taken and not yet delivered
  bool failed = false;
  std::exception_ptr failure;
  auto is_large = [&](size_t index) { return files[index].size >= kLargeFile; };
  // The first file in input order that may start now: within the window, and never a second large one.
  auto takeable = [&]() -> std::optional<size_t> {
    for (size_t index : untaken) {
      const bool first = index == delivered;
      if (!first && (index - delivered >= kWindowFiles || ready_bytes + files[index].size > kWindowBytes)) break;
      if (is_large(index) && large_held) continue;
      return index;
    }
    return std::nullopt;
  };
  auto worker = [&] {
    std::unique_lock<std::mutex> guard(lock);
    for (;;) {
      std::optional<size_t> index;
      changed.wait(guard, [&] { return failed || untaken.empty() || (index = takeable()).has_value(); });
      if (failed || !index) return;
      untaken.erase(*index);
      large_held = large_held || is_large(*index);
      guard.unlock();
      FileResult result = analyse_source(scanner, files[*index]);
      guard.lock();
      if (failed) return;
      ready.emplace(*index, std::move(result));
      ready_bytes += files[*index].size;
      // Deliver what is now in order; one thread at a time, under the lock, so the order holds.
      try {
        for (auto it = ready.begin(); it != ready.end() && it->first == delivered; it = ready.erase(it)) {
          ready_bytes -= files[it->first].size;
          deliver(it->first, it->second);
          if (is_large(it->first)) {
            large_held = false;
            it->second = FileResult{};
            budget::return_free_memory();
          }
          ++delivered;
        }
      } catch (...) {
        failed = true;
        failure = std::current_exception();
      }
      changed.notify_all();
    }
  };
  run_workers(files.size(), threads, worker);
  if (failure) std::rethrow_exception(failure);
}

std::vector<std::string> supported_image_formats() { return source::tsk_formats(); }

}  // namespace tagwho
