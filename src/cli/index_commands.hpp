// tagwho index ... and the index's part in tagwho TAG: option parsing and printing only.
#pragma once
#include <CLI/CLI.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tagwho/tag.hpp"
#include "tagwho/tagdb.hpp"

namespace tagwho::cli {

struct IndexOptions {
  std::string index;      // --index FILE ("" = the default location)
  bool no_index = false;  // --no-index
};

// --index FILE and --no-index on the search command line.
void add_index_options(CLI::App& app, IndexOptions& options);

struct IndexCommands;
// Registers `tagwho index build|update|stats|export|merge`.
std::shared_ptr<IndexCommands> add_index_commands(CLI::App& app);
// Runs the index subcommand given on the command line, if any; its exit status.
std::optional<int> run_index_commands(const IndexCommands& commands);

// True when a search without PATH can be answered: an index exists where the options point.
bool index_available(const IndexOptions& options);
// tagwho TAG [PATH...] answered from the index: nullopt when the index does not cover the paths (the
// caller scans instead). Prints the answer as a scan does.
std::optional<int> search_with_index(const std::vector<Tag>& tags, const std::vector<std::string>& paths,
                                     const IndexOptions& options, bool json, size_t max_evidence, unsigned threads,
                                     const Tagdb* tagdb);

}  // namespace tagwho::cli
