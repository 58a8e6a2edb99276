// From paths to reports: walk the inputs, analyse each PE file, collect findings per file.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tagwho/byte_view.hpp"
#include "tagwho/evidence.hpp"
#include "tagwho/literal_matcher.hpp"
#include "tagwho/result.hpp"
#include "tagwho/tag.hpp"

namespace tagwho {

// A file found under the user's paths. explicit_path: named on the command line, so a non-PE file is
// worth an error rather than a silent skip.
struct InputFile {
  std::string path;
  bool explicit_path = false;
};

struct WalkProblem {
  std::string path;
  std::string message;
};

// Lists regular files under the paths (directories recursively, entries sorted by name so the output
// order never depends on the file system). Symlinks to files are followed, symlinked directories are not
// (no loops). Problems (missing path, permission denied) are reported, and the walk goes on.
std::vector<InputFile> walk_inputs(const std::vector<std::string>& paths, std::vector<WalkProblem>& problems);

// What one file's analysis may cost before it is stopped with an error (the scan goes on): wall time
// and memory in its large structures (the file's bytes, decoded code, literal hits, evidence). 0 = no limit.
struct FileLimits {
  double seconds = 60;
  uint64_t memory_bytes = 1ull << 30;
};

struct ScanRequest {
  ScanRequest() = default;
  ScanRequest(std::vector<Tag> tags, bool all_tags) : tags(std::move(tags)), all_tags(all_tags) {}

  std::vector<Tag> tags;     // search: the tags asked for (without the protected bit, no duplicates)
  bool all_tags = false;     // driver mode: every tag recovered at a call site, no literal search
  // Search: analyse the code of every file, not only of files that hold some encoding of a requested tag
  // (its bytes, protected variant, ARM64 MOVZ/MOVK halves, or a nearby constant it can be computed from).
  bool full_analysis = false;
  FileLimits limits;
};

// Outcome of analysing one file.
struct FileResult {
  DriverReport report;
  bool not_pe = false;       // skipped: content is not a PE file
  bool code_analysed = false;  // its call sites were analysed (a search's prefilter skips files that cannot
                               // hold call evidence for the tags: see may_hold_call_evidence)
};

// Analyses files for one request. Thread-safe: analyse() may run on several threads at once.
class Scanner {
 public:
  static Result<Scanner> create(ScanRequest request);
  FileResult analyse(const std::string& path) const;
  // windows: the literal scan's pass over the bytes (MappedFile::windows()); null: over `bytes`.
  FileResult analyse_bytes(const std::string& path, ByteView bytes, WindowReader* windows = nullptr) const;
  const ScanRequest& request() const { return request_; }

 private:
  Scanner() = default;
  ScanRequest request_;
  std::shared_ptr<const LiteralMatcher> matcher_;  // absent in driver mode
};

// Runs analyse() over the inputs on `threads` threads; results come back in input order.
std::vector<FileResult> scan_files(const Scanner& scanner, const std::vector<InputFile>& inputs, unsigned threads);

// The result for a file whose reads failed while it was analysed (MappedFile::read_failure): one error,
// nothing found.
FileResult failed_read(const std::string& path, uint64_t size, const std::string& error);

}  // namespace tagwho
