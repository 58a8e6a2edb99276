// tagwho poolmon LOG...: from poolmon -n / !poolused logs to the drivers that own the growing tags.
// Option parsing and printing only; parsing, ranking and the chart are in libtagwho (tagwho/poolmon.hpp).
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tagwho/result.hpp"
#include "tagwho/tagdb.hpp"

namespace tagwho::cli {

// Opens the pool tag database as every tagwho command does (--tagdb files, --no-tagdb, the paths scanned).
using TagdbOpener = std::function<Result<std::optional<Tagdb>>(const std::vector<std::string>& files, bool none,
                                                               const std::vector<std::string>& scan_paths)>;

struct PoolmonCommand;
// Registers `tagwho poolmon`.
std::shared_ptr<PoolmonCommand> add_poolmon_command(CLI::App& app);
// Runs it when it was given on the command line; its exit status.
std::optional<int> run_poolmon_command(const PoolmonCommand& command, const TagdbOpener& open_tagdb);

}  // namespace tagwho::cli
