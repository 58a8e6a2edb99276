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

std::vector<FileResult> scan_paths(const Scanner& scanner, const std::vector<std::string>& paths, unsigned threads,
                                   bool& had_error, std::vector<MissingService>* missing) {
  SourceList sources = open_sources(paths);
  for (const WalkProblem& problem : sources.problems) report_problem(problem.path, problem.message);
  had_error = !sources.problems.empty();
  if (missing) *missing = std::move(sources.missing);
  const std::vector<SourceFile>& inputs = sources.files;
  std::vector<FileResult> results = scan_sources(scanner, inputs, thread_count(threads));
  std::vector<FileResult> pe_files;
  for (size_t i = 0; i < results.size(); ++i) {
    FileResult& result = results[i];
    if (result.not_pe) {
      // Inside a directory, non-PE files are simply not drivers; named explicitly, they are a mistake.
      if (inputs[i].explicit_path) {
        report_problem(result.report.path, "not a PE file");
        had_error = true;
      }
      continue;
    }
    for (const std::string& error : result.report.errors) {
      report_problem(result.report.path, error);
      had_error = true;
    }
    pe_files.push_back(std::move(result));
  }
  return pe_files;
}

}  // namespace tagwho::cli
