// The local tag-to-driver index: an SQLite file holding, per scanned file, what tagwho found in it, so that
// a question is answered without reading the drivers again. The schema is documented in README.md.
//
// What is stored, per distinct content (files with the same bytes share one row; every path is listed):
//  - the file facts (size, machine, version info, errors) and every tag recovered at a call site (call and
//    wrapper evidence): the driver listing, complete;
//  - for every tag in the content's "literal tag set" (tagsets: every tag proven at a call site anywhere in
//    the index when the content was last brought up to date, if its bytes read as text), the finding a
//    search for that tag alone produces: call and wrapper evidence plus its literal (code, data, raw)
//    evidence.
// A search for a tag in a content's literal set is answered from the index alone; for any other tag the
// content is searched afresh (its bytes first, the full analysis only on a hit), so answers always equal a
// fresh scan's. Literal evidence of tags no driver proves is not stored: every 4-byte value of every file
// would be (the index would outgrow the drivers).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tagwho/byte_view.hpp"
#include "tagwho/evidence.hpp"
#include "tagwho/result.hpp"
#include "tagwho/scan.hpp"
#include "tagwho/service.hpp"
#include "tagwho/tag.hpp"
#include "tagwho/tagdb.hpp"

namespace tagwho {

// PRAGMA application_id of a tagwho index: "twix".
constexpr uint32_t kIndexApplicationId = 0x74776978u;
// PRAGMA user_version: the layout of the tables (README "Index schema"). Bumped on any change.
constexpr int kIndexSchemaVersion = 5;
// The analysis that produced the stored evidence. Bump it whenever a change to analysis or classification
// can change any answer: `tagwho index update` then analyses every file again.
constexpr int kIndexAnalysisVersion = 1;

// $XDG_CACHE_HOME/tagwho/index.db, else $HOME/.cache/tagwho/index.db ("" when neither is set).
std::string default_index_path();

// XXH64 (seed 0) of the bytes: the content hash that identifies identical files (with their size).
uint64_t content_hash(ByteView bytes);
uint64_t content_hash(const void* data, size_t size, uint64_t seed = 0);

// This machine's name as the index records it (gethostname).
std::string local_host_name();

struct IndexProblem {
  std::string path;
  std::string message;  // one line
};

// What a build or update did.
struct IndexCounts {
  size_t files = 0;          // regular files seen under the roots
  size_t pe_files = 0;       // of which PE files (parsed or not)
  size_t analysed = 0;       // distinct contents analysed in this run
  size_t reused = 0;         // files whose stored analysis was kept (unchanged, or identical content known)
  size_t added = 0;          // paths not in the index before
  size_t changed = 0;        // paths whose size, mtime or content changed
  size_t removed = 0;        // paths dropped: gone from disk or no longer under a root
  size_t duplicates = 0;     // PE files sharing their content with another indexed file
  size_t literal_rescans = 0;  // contents searched again for tags newly proven elsewhere
  size_t literal_tags = 0;   // tags whose literal evidence is stored for every local content
  uint64_t bytes_analysed = 0;
  std::vector<IndexProblem> problems;  // walk problems and files that could not be read (one line each)
};

struct IndexBuildOptions {
  unsigned threads = 1;
  std::string host;  // "" = local_host_name()
  FileLimits limits;  // per file analysed
  // A content's literal evidence is classified and stored a group of tags at a time, each group holding at
  // most this many hits (one tag's hits are never split): memory stays bounded on drivers with hundreds of
  // thousands of hits. The index is the same whatever the value.
  size_t literal_group_hits = 20'000;
};

struct IndexStats {
  std::string path;
  int schema_version = 0;
  int analysis_version = 0;
  uint64_t database_bytes = 0;
  size_t files = 0, pe_files = 0, not_pe = 0, error_files = 0;
  size_t contents = 0;          // distinct PE contents
  size_t distinct_tags = 0;     // tags with call or wrapper evidence
  size_t literal_tags = 0;      // tags answered from the index for every content
  uint64_t total_bytes = 0;     // sum of file sizes
  std::vector<std::pair<std::string, size_t>> machines;  // files per machine
  struct Host {
    std::string name;
    size_t files = 0;
    std::vector<std::string> roots;
    int64_t indexed_at = 0;     // unix seconds of the last build/update (0 = unknown)
  };
  std::vector<Host> hosts;
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

// A search answered (partly) from the index.
struct IndexSearch {
  bool used = false;                // false: the paths are not all under indexed roots: scan instead
  std::vector<DriverReport> reports;  // PE files with findings, plus those the tag database names
  std::vector<IndexProblem> problems;  // per file, in walk order (stored errors, walk problems, ...)
  std::vector<MissingService> missing;  // driver services whose file is missing (Windows roots, images)
  size_t files = 0;                 // files the answer covers
  size_t from_index = 0;            // answered from stored findings
  size_t searched = 0;              // contents searched afresh for tags outside their literal set
  size_t stale_changed = 0, stale_new = 0, stale_gone = 0;  // PATH queries: differences with the disk
  size_t unsearchable = 0;          // contents (other hosts, or files gone) that could not be searched
  bool multi_host = false;          // paths are shown as host:path
  bool analysis_outdated = false;   // built by another analysis version
};

class Index {
 public:
  // Opens an existing index. create: make a new one when the file does not exist (or is an empty SQLite
  // file). A file that is not a tagwho index, or a newer schema, is an error and is never written to.
  static Result<Index> open(const std::string& path, bool create, int busy_timeout_ms = 10000);
  Index(Index&&) noexcept;
  Index& operator=(Index&&) noexcept;
  ~Index();

  const std::string& path() const;

  // Analyses every file under the roots afresh (the index then describes exactly these roots for this
  // host). Empty roots: the roots already recorded. One transaction: killed, the previous index stays.
  Result<IndexCounts> build(const std::vector<std::string>& roots, const IndexBuildOptions& options);
  // Re-analyses only what changed under the recorded roots (size, mtime, then hash), drops what is gone,
  // adds what is new; everything when the analysis version changed.
  Result<IndexCounts> update(const IndexBuildOptions& options);

  // tagwho TAG [PATH...]: empty paths = the whole index (every host). With paths, only this host's files;
  // used = false when a path is not under an indexed root. Stale files are analysed afresh.
  Result<IndexSearch> search(const std::vector<Tag>& tags, const std::vector<std::string>& paths,
                             const Tagdb* tagdb, unsigned threads);

  // Every file's driver listing (call and wrapper evidence, as `tagwho driver`), in path order; the host
  // is given for each (also in single-host indexes).
  Result<bool> for_each_driver(const std::function<void(const std::string& host, const DriverReport&)>& visit);
  Result<IndexStats> stats();
  size_t host_count();

  // Adds the inputs' files, each under its host of origin, to this index (a host present in an input
  // replaces that host's files here). One transaction.
  Result<size_t> merge_from(const std::vector<std::string>& inputs);

  struct State;  // opaque: the connection

 private:
  Index();
  std::unique_ptr<State> state_;
};

}  // namespace tagwho
