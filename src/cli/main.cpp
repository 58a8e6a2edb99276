// tagwho command line: parses options, calls the library, prints. No analysis here.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <thread>

#include "common.hpp"
#include "index_commands.hpp"
#include "poolmon_command.hpp"
#include "tagwho/report.hpp"
#include "tagwho/scan.hpp"
#include "tagwho/source.hpp"
#include "tagwho/tagdb.hpp"

namespace {

using namespace tagwho;
using tagwho::cli::kError;
using tagwho::cli::kFound;
using tagwho::cli::kNotFound;
using tagwho::cli::report_problem;
using tagwho::cli::thread_count;

struct TagdbOptions {
  std::vector<std::string> files;
  bool none = false;
};

struct CommonOptions {
  bool json = false;
  size_t max_evidence = 5;
  unsigned threads = 0;
  TagdbOptions tagdb;
  FileLimits limits;
};

void add_tagdb_options(CLI::App& app, TagdbOptions& options) {
  app.add_option("--tagdb", options.files, "A pooltag.txt to use (repeatable; later files win ties)")
      ->allow_extra_args(false);
  app.add_flag("--no-tagdb", options.none, "Use no pool tag database");
}

void add_common_options(CLI::App& app, CommonOptions& options) {
  app.add_flag("--json", options.json, "Print JSON Lines (one object per result) instead of the table");
  app.add_option("--max-evidence", options.max_evidence, "Evidence lines per finding in the table (0 = all)")
      ->default_val(5);
  app.add_option("-j,--threads", options.threads, "Files analysed in parallel (default: one per core)");
  tagwho::cli::add_limit_options(app, options.limits);
  add_tagdb_options(app, options.tagdb);
}

// The tagdb folder that belongs to this executable: the source tree's tagdb/ when it runs from the build
// tree, else the installed share/tagwho (next to the executable first, so a moved install still works).
std::vector<std::string> installed_tagdb_dirs() {
  namespace fs = std::filesystem;
  std::error_code error;
  fs::path exe = fs::read_symlink("/proc/self/exe", error);
  if (!error && fs::equivalent(exe.parent_path(), TAGWHO_BUILD_DIR, error)) return {TAGWHO_TAGDB_SOURCE_DIR};
  std::vector<std::string> dirs;
  if (!exe.empty()) dirs.push_back((exe.parent_path().parent_path() / "share" / "tagwho").string());
  dirs.push_back(TAGWHO_TAGDB_INSTALL_DIR);
  return dirs;
}

// Chooses and loads the database. Absent (with a single note on stderr) when none is found; an error when
// a file the user named cannot be used. The file used is named on stderr only for a person at a terminal,
// so scripts and their stderr stay as they were; JSON names each entry's source file.
Result<std::optional<Tagdb>> open_tagdb(const TagdbOptions& options, const std::vector<std::string>& scan_paths) {
  if (options.none) return std::optional<Tagdb>{};
  TagdbSources sources;
  sources.explicit_files = options.files;
  if (const char* environment = std::getenv("TAGWHO_TAGDB")) sources.environment = environment;
  sources.installed_dirs = installed_tagdb_dirs();
  sources.scan_roots = scan_paths;
  auto choice = choose_tagdb(sources);
  if (!choice) return Error{choice.error()};
  if (choice->files.empty()) {
    std::cerr << "tagwho: no pool tag database found (--tagdb FILE, $TAGWHO_TAGDB, " << sources.installed_dirs.back()
              << ", or Debugging Tools under a scanned Windows root): results carry no pooltag.txt entries\n";
    return std::optional<Tagdb>{};
  }
  auto tagdb = load_tagdb(*choice);
  if (!tagdb) return Error{tagdb.error()};
  if (isatty(STDERR_FILENO))
    for (const TagdbFile& file : tagdb->files())
      std::cerr << "tagwho: tag database (" << choice->origin << "): " << printable(file.path) << " ("
                << file.entries.size() << " entries)\n";
  return std::optional<Tagdb>{std::move(*tagdb)};
}

int run_search(const std::vector<std::string>& tag_texts, const std::vector<std::string>& paths,
               const CommonOptions& options, const tagwho::cli::IndexOptions& index_options, bool full_analysis) {
  std::optional<std::vector<Tag>> parsed = cli::parse_tags(tag_texts, true);
  if (!parsed) return kError;
  const std::vector<Tag>& tags = *parsed;
  if (paths.empty() && !tagwho::cli::index_available(index_options)) {
    std::cerr << "tagwho: no PATH given and no index: name the drivers or folders to search (e.g. tagwho "
              << tags.front().display() << " C:/Windows/System32/drivers), or build an index (tagwho index build PATH...)\n";
    return kError;
  }
  auto tagdb = open_tagdb(options.tagdb, paths);
  if (!tagdb) {
    std::cerr << "tagwho: " << tagdb.error() << '\n';
    return kError;
  }
  const Tagdb* db = *tagdb ? &**tagdb : nullptr;
  // An index that covers the paths (or the whole index, without PATH) answers instead of a scan.
  if (auto answered = tagwho::cli::search_with_index(tags, paths, index_options, options.json, options.max_evidence,
                                                     options.threads, db))
    return *answered;
  ScanRequest request{tags, false};
  request.limits = options.limits;
  request.full_analysis = full_analysis;
  auto scanner = Scanner::create(request);
  if (!scanner) {
    std::cerr << "tagwho: " << scanner.error() << '\n';
    return kError;
  }
  bool had_error = false;
  std::vector<MissingService> missing;
  std::vector<FileResult> results = cli::scan_paths(*scanner, paths, options.threads, had_error, &missing);
  std::vector<const DriverReport*> reports;
  for (const FileResult& result : results) reports.push_back(&result.report);
  std::vector<SearchRow> rows = rank_search(reports, tags);
  std::vector<UnprovenEntry> unproven = db ? unproven_search(*db, tags, reports) : std::vector<UnprovenEntry>{};
  if (options.json) {
    write_search_json(std::cout, rows, db);
    write_unproven_json(std::cout, unproven);
    write_missing_json(std::cout, missing);
  } else {
    write_search_table(std::cout, rows, ReportOptions{options.max_evidence, db});
    write_unproven_table(std::cout, unproven);
    write_missing_table(std::cout, missing);
  }
  std::cout.flush();
  if (had_error) return kError;
  return rows.empty() ? kNotFound : kFound;
}

// Driver mode scans every tag recovered at a call site; shared by `driver` and `tagdb unknown`. Each PE
// file's result goes to on_result in input order as soon as it is ready, and is freed after.
void scan_drivers(const std::vector<std::string>& paths, const CommonOptions& options, bool& had_error,
                  std::vector<MissingService>* missing, const std::function<void(FileResult&)>& on_result) {
  ScanRequest request{{}, true};
  request.limits = options.limits;
  auto scanner = Scanner::create(request);
  if (!scanner) {
    std::cerr << "tagwho: " << scanner.error() << '\n';
    had_error = true;
    return;
  }
  cli::scan_paths_in_order(*scanner, paths, options.threads, had_error, missing, on_result);
}

// pooltag.txt lines for what the scan proved; tags with no text form in that format are named on stderr.
void write_pooltag(const DriverReport& report) {
  std::vector<Tag> skipped;
  std::cout << pooltag_lines(report, &skipped);
  for (Tag tag : skipped) report_problem(report.path, "tag " + tag.display() + " cannot be written in pooltag.txt format");
}

int run_driver(const std::vector<std::string>& paths, const CommonOptions& options, const std::string& format) {
  bool json = options.json || format == "json";
  TagdbOptions tagdb_options = options.tagdb;
  if (format == "pooltag") tagdb_options.none = true;  // the written file holds what the scan proved, only
  auto tagdb = open_tagdb(tagdb_options, paths);
  if (!tagdb) {
    std::cerr << "tagwho: " << tagdb.error() << '\n';
    return kError;
  }
  const Tagdb* db = *tagdb ? &**tagdb : nullptr;
  bool had_error = false;
  std::vector<MissingService> missing;
  bool found = false;
  if (format == "pooltag") std::cout << pooltag_header();
  scan_drivers(paths, options, had_error, &missing, [&](FileResult& result) {
    found = found || !result.report.findings.empty();
    if (format == "pooltag")
      write_pooltag(result.report);
    else if (json)
      write_driver_json(std::cout, result.report, db);
    else
      write_driver_table(std::cout, result.report, ReportOptions{options.max_evidence, db});
  });
  if (format != "pooltag") {
    if (json)
      write_missing_json(std::cout, missing);
    else
      write_missing_table(std::cout, missing);
  }
  std::cout.flush();
  if (had_error) return kError;
  return found ? kFound : kNotFound;
}

// The database a tagdb subcommand works on: one must exist.
std::optional<Tagdb> require_tagdb(const TagdbOptions& options, const std::vector<std::string>& scan_paths) {
  auto tagdb = open_tagdb(options, scan_paths);
  if (!tagdb) {
    std::cerr << "tagwho: " << tagdb.error() << '\n';
    return std::nullopt;
  }
  if (!*tagdb) std::cerr << "tagwho: this command needs a pool tag database\n";
  return std::move(*tagdb);
}

int run_tagdb_lookup(const std::vector<std::string>& tag_texts, const TagdbOptions& tagdb_options, bool json) {
  std::optional<std::vector<Tag>> parsed = cli::parse_tags(tag_texts, false);
  if (!parsed) return kError;
  const std::vector<Tag>& tags = *parsed;
  std::optional<Tagdb> tagdb = require_tagdb(tagdb_options, {});
  if (!tagdb) return kError;
  bool found = false;
  for (Tag tag : tags) {
    std::vector<const TagdbEntry*> entries = tagdb->lookup(tag);
    found = found || !entries.empty();
    if (json)
      write_lookup_json(std::cout, tag, entries);
    else
      write_lookup_table(std::cout, tag, entries);
  }
  std::cout.flush();
  return found ? kFound : kNotFound;
}

// Proven tags the database does not know, as pooltag.txt lines ready to add (or JSON Lines).
int run_tagdb_unknown(const std::vector<std::string>& paths, const CommonOptions& options) {
  std::optional<Tagdb> tagdb = require_tagdb(options.tagdb, paths);
  if (!tagdb) return kError;
  bool had_error = false;
  bool found = false;
  scan_drivers(paths, options, had_error, nullptr, [&](FileResult& result) {
    std::vector<const Finding*> unknown = unknown_findings(*tagdb, result.report);
    found = found || !unknown.empty();
    if (options.json) {
      for (const Finding* finding : unknown) write_unknown_json(std::cout, result.report, *finding);
      return;
    }
    DriverReport only_unknown = result.report;  // the writer takes a report: keep just the unknown tags
    only_unknown.findings.clear();
    for (const Finding* finding : unknown) only_unknown.findings.push_back(*finding);
    std::cout << pooltag_lines(only_unknown);
  });
  std::cout.flush();
  if (had_error) return kError;
  return found ? kFound : kNotFound;
}

// Which files make up the database, what each holds, and every line that is not an entry.
int run_tagdb_check(const std::vector<std::string>& paths, const TagdbOptions& tagdb_options) {
  std::optional<Tagdb> tagdb = require_tagdb(tagdb_options, paths);
  if (!tagdb) return kError;
  for (const TagdbFile& file : tagdb->files()) {
    const TagdbStats& stats = file.stats;
    std::cout << printable(file.path) << ": " << stats.entries << " entries (" << stats.two_field
              << " with two fields, " << stats.wildcards << " wildcards, " << stats.duplicates << " duplicates), "
              << stats.comments << " comments, " << stats.blank << " blank, " << stats.free_text << " free text"
              << (stats.ctrl_z ? ", ends with Ctrl-Z" : "") << (stats.crlf ? ", CRLF" : "") << '\n';
    for (const TagdbFreeText& line : file.free_text)
      std::cout << printable(line.source) << ':' << line.line << ": not an entry: " << printable(line.text) << '\n';
  }
  std::cout.flush();
  return kFound;
}

constexpr const char* kDescription =
    "tagwho: which Windows kernel driver owns this pool tag?\n\n"
    "  tagwho TAG PATH...            drivers that use TAG, strongest evidence first\n"
    "  tagwho -e TAG -e TAG PATH...  several tags in one pass (every positional is then a PATH)\n"
    "  tagwho driver PATH...         every tag each driver uses (the reverse question)\n"
    "  tagwho driver PATH... --format pooltag   the same, as pooltag.txt lines\n"
    "  tagwho tagdb lookup TAG...    what the pool tag database (pooltag.txt) says about each tag\n"
    "  tagwho tagdb unknown PATH...  proven tags the database does not know: what to add\n"
    "  tagwho tagdb check [PATH...]  which database files are used, and their lines that are not entries\n"
    "  tagwho index build PATH...    analyse once into the index; then tagwho TAG (no PATH) answers from it\n"
    "  tagwho index update|stats|export|merge   keep it current, describe it, export it, combine hosts\n"
    "  tagwho poolmon LOG... --root PATH   the growing tags of poolmon -n / !poolused logs, and their drivers\n\n"
    "TAG is 1-4 characters as poolmon shows them (\"Cc\" means \"Cc  \"), 0xXXXXXXXX, or \\xNN escapes.\n"
    "PATH is a file or a folder searched recursively; PE files are recognised by content. The root of a\n"
    "Windows installation (mounted volume) and disk images (raw/dd, E01, VHD, VHDX, VMDK) are searched\n"
    "where drivers live, with the service that loads each driver (offline SYSTEM hive).\n\n"
    "Evidence, strongest first: call (tag recovered at a call of a tag-taking API such as\n"
    "ExAllocatePoolWithTag), code (immediate in code), data (bytes in a data section), raw (bytes\n"
    "anywhere else: headers, resources, overlay, or a file that did not parse).\n\n"
    "Pool tag database: --tagdb FILE (repeatable), else $TAGWHO_TAGDB, else the tagdb folder installed\n"
    "with tagwho, else Debugging Tools/WDK pooltag.txt under a scanned Windows root.\n\n"
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
  tagwho::cli::IndexOptions index_options;
  tagwho::cli::add_index_options(app, index_options);
  app.add_option("-e,--tag", extra_tags, "A tag to search for (repeatable); then every positional is a PATH")
      ->allow_extra_args(false);
  app.add_option("args", positionals, "TAG then PATH... (or only PATH... with -e)");
  bool full_analysis = false;
  app.add_flag("--full", full_analysis,
               "Decode the code of every driver, also of those holding no encoding of the tag (slower; the "
               "answer differs only for a tag computed from constants far from it)");

  CommonOptions driver_options;
  std::vector<std::string> driver_paths;
  CLI::App* driver = app.add_subcommand("driver", "List every tag each driver uses, with evidence");
  add_common_options(*driver, driver_options);
  driver->add_option("PATH", driver_paths, "Driver files or folders")->required();
  std::string driver_format = "table";
  driver->add_option("--format", driver_format, "table, json, or pooltag (pooltag.txt lines poolmon /g reads)")
      ->check(CLI::IsMember({"table", "json", "pooltag"}));

  // Subcommand names have 5+ characters, so a positional of up to 4 characters is always a tag.
  CLI::App* tagdb = app.add_subcommand("tagdb", "The pool tag database (pooltag.txt)");
  tagdb->require_subcommand(1);
  TagdbOptions lookup_options;
  bool lookup_json = false;
  std::vector<std::string> lookup_tags;
  CLI::App* lookup = tagdb->add_subcommand("lookup", "The database entries for each tag");
  lookup->add_flag("--json", lookup_json, "Print JSON Lines");
  add_tagdb_options(*lookup, lookup_options);
  lookup->add_option("TAG", lookup_tags, "Tags to look up")->required();
  CommonOptions unknown_options;
  std::vector<std::string> unknown_paths;
  CLI::App* unknown = tagdb->add_subcommand("unknown", "Proven tags the database does not know");
  add_common_options(*unknown, unknown_options);
  unknown->add_option("PATH", unknown_paths, "Driver files or folders")->required();
  TagdbOptions check_options;
  std::vector<std::string> check_paths;
  CLI::App* check = tagdb->add_subcommand("check", "Database files used, with their non-entry lines");
  add_tagdb_options(*check, check_options);
  check->add_option("PATH", check_paths, "Scanned paths (a Windows root may hold Debugging Tools)");
  auto index_commands = tagwho::cli::add_index_commands(app);
  auto poolmon_command = tagwho::cli::add_poolmon_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& success) {
    return app.exit(success);
  } catch (const CLI::ParseError& error) {
    app.exit(error);
    return kError;
  }

  try {
    if (*driver) return run_driver(driver_paths, driver_options, driver_format);
    if (*lookup) return run_tagdb_lookup(lookup_tags, lookup_options, lookup_json);
    if (*unknown) return run_tagdb_unknown(unknown_paths, unknown_options);
    if (*check) return run_tagdb_check(check_paths, check_options);
    if (auto status = tagwho::cli::run_index_commands(*index_commands)) return *status;
    auto open_poolmon_tagdb = [](const std::vector<std::string>& files, bool none, const std::vector<std::string>& roots) {
      return open_tagdb(TagdbOptions{files, none}, roots);
    };
    if (auto status = tagwho::cli::run_poolmon_command(*poolmon_command, open_poolmon_tagdb)) return *status;
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
    return run_search(tags, paths, search_options, index_options, full_analysis);
  } catch (const std::exception& error) {
    std::cerr << "tagwho: internal error: " << error.what() << '\n';
    return kError;
  }
}
