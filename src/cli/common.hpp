// What every tagwho command shares: exit codes, the stderr problem line, thread count, tag parsing, and the
// scan of user paths. Printing and option handling only; the work is in libtagwho.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tagwho/scan.hpp"
#include "tagwho/source.hpp"
#include "tagwho/tag.hpp"

namespace tagwho::cli {

// grep's exit codes.
constexpr int kFound = 0;
constexpr int kNotFound = 1;
constexpr int kError = 2;

// "tagwho: PATH: message", escaped for the terminal: the one line each problem file gets.
void report_problem(const std::string& path, const std::string& message);

// --file-timeout SECONDS and --file-memory MIB: the per-file limits (FileLimits) of a command that analyses.
void add_limit_options(CLI::App& app, FileLimits& limits);

// -j: 0 means one thread per core.
unsigned thread_count(unsigned requested);

// Parses user tags (without the PROTECTED_POOL bit, which poolmon never shows), dropping repeats when asked;
// prints the first bad one's error and returns nothing.
std::optional<std::vector<Tag>> parse_tags(const std::vector<std::string>& texts, bool drop_duplicates);

// Opens the paths (files, folders, Windows roots, disk images), analyses every PE file and prints each
// problem once on stderr; had_error tells whether any was printed. Returns the results of PE files; driver
// services whose file is missing go to `missing` when asked for.
std::vector<FileResult> scan_paths(const Scanner& scanner, const std::vector<std::string>& paths, unsigned threads,
                                   bool& had_error, std::vector<MissingService>* missing = nullptr);
// The same, each PE file's result handed to on_result in input order as soon as it can be (and freed after):
// for output written file by file, whose memory must not grow with the number of files.
void scan_paths_in_order(const Scanner& scanner, const std::vector<std::string>& paths, unsigned threads,
                         bool& had_error, std::vector<MissingService>* missing,
                         const std::function<void(FileResult&)>& on_result);

}  // namespace tagwho::cli
