// tagwho command line: parses options, calls the library, prints. No analysis here.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>
#include <thread>

#include "tagwho/report.hpp"
#include "tagwho/scan.hpp"

namespace {

using namespace tagwho;

// grep's exit codes.
constexpr int kFound = 0;
constexpr int kNotFound = 1;
constexpr int kError = 2;

struct CommonOptions {
  bool json = false;
  size_t max_evidence = 5;
  unsigned threads = 0;
};

void add_common_options(CLI::App& app, CommonOptions& options) {
  app.add_flag("--json", options.json, "Print JSON Lines (one object per result) instead of the table");
  app.add_option("--max-evidence", options.max_evidence, "Evidence lines per finding in the table (0 = all)")
      ->default_val(5);
  app.add_option("-j,--threads", options.threads, "Files analysed in parallel (default: one per core)");
}

void report_problem(const std::string& path, const std::string& message) {
  std::cerr << "tagwho: " << printable(path) << ": " << printable(message) << '\n';
}

unsigned thread_count(unsigned requested) {
  return requested ? requested : std::max(1u, std::thread::hardware_concurrency());
}

// Walks the paths, analyses every PE file, prints each problem once on stderr. Returns reports of PE files.
std::vector<FileResult> scan(const Scanner& scanner, const std::vector<std::string>& paths, unsigned threads,
                             bool& had_error) {
  std::vector<WalkProblem> problems;
  std::vector<InputFile> inputs = walk_inputs(paths, problems);
  for (const WalkProblem& problem : problems) report_problem(problem.path, problem.message);
  had_error = !problems.empty();
  std::vector<FileResult> results = scan_files(scanner, inputs, thread_count(threads));
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

int run_search(const std::vector<std::string>& tag_texts, const std::vector<std::string>& paths,
               const CommonOptions& options) {
  std::vector<Tag> tags;
  for (const std::string& text : tag_texts) {
    auto tag = Tag::parse(text);
    if (!tag) {
      std::cerr << "tagwho: " << tag.error() << '\n';
      return kError;
    }
    Tag plain = tag->without_protected_bit();  // poolmon never shows the PROTECTED_POOL bit
    if (std::find(tags.begin(), tags.end(), plain) == tags.end()) tags.push_back(plain);
  }
  if (paths.empty()) {
    std::cerr << "tagwho: no PATH given: name the drivers or folders to search (e.g. tagwho "
              << tags.front().display() << " C:/Windows/System32/drivers)\n";
    return kError;
  }
  auto scanner = Scanner::create(ScanRequest{tags, false});
  if (!scanner) {
    std::cerr << "tagwho: " << scanner.error() << '\n';
    return kError;
  }
  bool had_error = false;
  std::vector<FileResult> results = scan(*scanner, paths, options.threads, had_error);
  std::vector<const DriverReport*> reports;
  for (const FileResult& result : results) reports.push_back(&result.report);
  std::vector<SearchRow> rows = rank_search(reports, tags);
  if (options.json)
    write_search_json(std::cout, rows);
  else
    write_search_table(std::cout, rows, ReportOptions{options.max_evidence});
  std::cout.flush();
  if (had_error) return kError;
  return rows.empty() ? kNotFound : kFound;
}

int run_driver(const std::vector<std::string>& paths, const CommonOptions& options) {
  auto scanner = Scanner::create(ScanRequest{{}, true});
  if (!scanner) {
    std::cerr << "tagwho: " << scanner.error() << '\n';
    return kError;
  }
  bool had_error = false;
  std::vector<FileResult> results = scan(*scanner, paths, options.threads, had_error);
  bool found = false;
  for (const FileResult& result : results) {
    found = found || !result.report.findings.empty();
    if (options.json)
      write_driver_json(std::cout, result.report);
    else
      write_driver_table(std::cout, result.report, ReportOptions{options.max_evidence});
  }
  std::cout.flush();
  if (had_error) return kError;
  return found ? kFound : kNotFound;
}

constexpr const char* kDescription =
    "tagwho: which Windows kernel driver owns this pool tag?\n\n"
    "  tagwho TAG PATH...            drivers that use TAG, strongest evidence first\n"
    "  tagwho -e TAG -e TAG PATH...  several tags in one pass (every positional is then a PATH)\n"
    "  tagwho driver PATH...         every tag each driver uses (the reverse question)\n\n"
    "TAG is 1-4 characters as poolmon shows them (\"Cc\" means \"Cc  \"), 0xXXXXXXXX, or \\xNN escapes.\n"
    "PATH is a file or a folder searched recursively; PE files are recognised by content.\n\n"
    "Evidence, strongest first: call (tag recovered at a call of a tag-taking API such as\n"
    "ExAllocatePoolWithTag), code (immediate in code), data (bytes in a data section), raw (bytes\n"
    "anywhere else: headers, resources, overlay, or a file that did not parse).\n\n"
    "Exit status: 0 found, 1 nothing found, 2 an error occurred (results are still printed).";

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{kDescription, "tagwho"};
  app.set_version_flag("--version", std::string("tagwho ") + TAGWHO_VERSION);
  app.require_subcommand(0, 1);

  CommonOptions search_options;
  std::vector<std::string> extra_tags;
  std::vector<std::string> positionals;
  add_common_options(app, search_options);
  app.add_option("-e,--tag", extra_tags, "A tag to search for (repeatable); then every positional is a PATH")
      ->allow_extra_args(false);
  app.add_option("args", positionals, "TAG then PATH... (or only PATH... with -e)");

  CommonOptions driver_options;
  std::vector<std::string> driver_paths;
  CLI::App* driver = app.add_subcommand("driver", "List every tag each driver uses, with evidence");
  add_common_options(*driver, driver_options);
  driver->add_option("PATH", driver_paths, "Driver files or folders")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& success) {
    return app.exit(success);
  } catch (const CLI::ParseError& error) {
    app.exit(error);
    return kError;
  }

  try {
    if (*driver) return run_driver(driver_paths, driver_options);
    std::vector<std::string> tags = extra_tags;
    std::vector<std::string> paths = positionals;
    if (tags.empty()) {
      if (paths.empty()) {
        std::cerr << app.help();
        return kError;
      }
      tags.push_back(paths.front());
      paths.erase(paths.begin());
    }
    return run_search(tags, paths, search_options);
  } catch (const std::exception& error) {
    std::cerr << "tagwho: internal error: " << error.what() << '\n';
    return kError;
  }
}
