#include "common.hpp"

#include <algorithm>
#include <iostream>
#include <thread>

#include "tagwho/report.hpp"

namespace tagwho::cli {

void report_problem(const std::string& path, const std::string& message) {
  std::cerr << "tagwho: " << printable(path) << ": " << printable(message) << '\n';
}

void add_limit_options(CLI::App& app, FileLimits& limits) {
  app.add_option("--file-timeout", limits.seconds,
                 "Stop analysing a file after this many seconds, with an error (0 = never)")
      ->default_val(limits.seconds)->check(CLI::NonNegativeNumber);
  app.add_option_function<double>(
         "--file-memory",
         [&limits](double mib) { limits.memory_bytes = static_cast<uint64_t>(mib * 1048576.0); },
         "Stop analysing a file whose analysis needs more than this many MiB, with an error (0 = no limit)")
      ->default_str(std::to_string(limits.memory_bytes >> 20))->check(CLI::NonNegativeNumber);
}

unsigned thread_count(unsigned requested) {
  return requested ? requested : std::max(1u, std::thread::hardware_concurrency());
}

std::optional<std::vector<Tag>> parse_tags(const std::vector<std::string>& texts, bool drop_duplicates) {
  std::vector<Tag> tags;
  for (const std::string& text : texts) {
    auto tag = Tag::parse(text);
    if (!tag) {
      std::cerr << "tagwho: " << tag.error() << '\n';
      return std::nullopt;
    }
    Tag plain = tag->without_protected_bit();
    if (!drop_duplicates || std::find(tags.begin(), tags.end(), plain) == tags.end()) tags.push_back(plain);
  }
  return tags;
}

namespace {

// One file's result: its problems on stderr; true when it is a PE file's result to report.
bool accept_result(FileResult& result, const SourceFile& input, bool& had_error) {
  if (result.not_pe) {
    // Inside a directory, non-PE files are simply not drivers; named explicitly, they are a mistake.
    if (input.explicit_path) {
      report_problem(result.report.path, "not a PE file");
      had_error = true;
    }
    return false;
  }
  for (const std::string& error : result.report.errors) {
    report_problem(result.report.path, error);
    had_error = true;
  }
  return true;
}

SourceList open_paths(const std::vector<std::string>& paths, bool& had_error, std::vector<MissingService>* missing) {
  SourceList sources = open_sources(paths);
  for (const WalkProblem& problem : sources.problems) report_problem(problem.path, problem.message);
  had_error = !sources.problems.empty();
  if (missing) *missing = std::move(sources.missing);
  return sources;
}

}  // namespace

std::vector<FileResult> scan_paths(const Scanner& scanner, const std::vector<std::string>& paths, unsigned threads,
                                   bool& had_error, std::vector<MissingService>* missing) {
  const SourceList sources = open_paths(paths, had_error, missing);
  std::vector<FileResult> results = scan_sources(scanner, sources.files, thread_count(threads));
  std::vector<FileResult> pe_files;
  for (size_t i = 0; i < results.size(); ++i)
    if (accept_result(results[i], sources.files[i], had_error)) pe_files.push_back(std::move(results[i]));
  return pe_files;
}

void scan_paths_in_order(const Scanner& scanner, const std::vector<std::string>& paths, unsigned threads,
                         bool& had_error, std::vector<MissingService>* missing,
                         const std::function<void(FileResult&)>& on_result) {
  const SourceList sources = open_paths(paths, had_error, missing);
  scan_sources_in_order(scanner, sources.files, thread_count(threads), [&](size_t index, FileResult& result) {
    if (accept_result(result, sources.files[index], had_error)) on_result(result);
  });
}

}  // namespace tagwho::cli
