// tagwho index build|update|stats|export|merge, and tagwho TAG answered from the index.
#include "index_commands.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <iostream>
#include <sstream>
#include <thread>

#include "common.hpp"
#include "tagwho/index.hpp"
#include "tagwho/report.hpp"

namespace tagwho::cli {
namespace {


std::string index_path(const std::string& option) { return option.empty() ? default_index_path() : option; }



std::string when(int64_t seconds) {
  if (!seconds) return "never";
  std::time_t t = static_cast<std::time_t>(seconds);
  char buffer[40];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&t));
  int64_t age = static_cast<int64_t>(std::time(nullptr)) - seconds;
  std::string ago = age < 120 ? std::to_string(age) + " s" : age < 7200 ? std::to_string(age / 60) + " min"
                  : age < 172800 ? std::to_string(age / 3600) + " h" : std::to_string(age / 86400) + " days";
  return std::string(buffer) + " (" + ago + " ago)";
}

std::string csv(const std::string& text) {
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

struct IndexCommands {
  CLI::App* build = nullptr;
  CLI::App* update = nullptr;
  CLI::App* stats = nullptr;
  CLI::App* exporter = nullptr;
  CLI::App* merge = nullptr;
  std::string index;
  std::vector<std::string> paths;
  unsigned threads = 0;
  bool json = false;
  std::string host;
  std::string format = "jsonl";
  std::string merge_out;
  std::vector<std::string> merge_in;
  double wait = 10;
  FileLimits limits;
};

void add_index_options(CLI::App& app, IndexOptions& options) {
  app.add_option("--index", options.index, "The index file (default: $XDG_CACHE_HOME/tagwho/index.db)");
  app.add_flag("--no-index", options.no_index, "Scan the PATHs even when an index covers them");
}

std::shared_ptr<IndexCommands> add_index_commands(CLI::App& app) {
  auto commands = std::make_shared<IndexCommands>();
  IndexCommands& c = *commands;
  CLI::App* index = app.add_subcommand("index", "The local tag-to-driver index (SQLite): build, update, stats, export, merge");
  index->require_subcommand(1);
  const std::string where = "The index file (default: " + default_index_path() + ")";

  c.build = index->add_subcommand("build", "Analyse every file under PATH... into the index (replaces its roots)");
  c.build->add_option("PATH", c.paths, "Files or folders (default: the roots already recorded)");
  c.update = index->add_subcommand("update", "Re-analyse what changed under the recorded roots, drop what is gone");
  for (CLI::App* sub : {c.build, c.update}) {
    sub->add_option("--index", c.index, where);
    sub->add_option("-j,--threads", c.threads, "Files analysed in parallel (default: one per core)");
    add_limit_options(*sub, c.limits);
    sub->add_flag("--json", c.json, "Print the counts as one JSON object");
    sub->add_option("--host", c.host, "Record the files under this host name (default: this machine's)");
  }
  c.merge = index->add_subcommand("merge", "Combine indexes (e.g. one per machine) into OUT, keeping each file's host");
  for (CLI::App* sub : {c.build, c.update, c.merge})
    sub->add_option("--wait", c.wait, "Seconds to wait for another tagwho writing the index (default 10)");
  c.stats = index->add_subcommand("stats", "Files, distinct tags, machines, size and age of the index");
  c.stats->add_option("--index", c.index, where);
  c.stats->add_flag("--json", c.json, "Print one JSON object");
  c.exporter = index->add_subcommand("export", "Every indexed driver's tags (call and wrapper evidence)");
  c.exporter->add_option("--index", c.index, where);
  c.exporter->add_option("--format", c.format, "jsonl (as tagwho driver --json), csv, or pooltag (pooltag.txt lines)")
      ->check(CLI::IsMember({"jsonl", "csv", "pooltag"}));
  c.merge->add_option("OUT", c.merge_out, "The index to write (created when missing)")->required();
  c.merge->add_option("IN", c.merge_in, "Indexes to add")->required();
  return commands;
}

namespace {

void print_counts(const IndexCounts& counts, const std::string& path, bool json, const char* verb) {
  for (const IndexProblem& p : counts.problems) report_problem(p.path, p.message);
  if (json) {
    std::cout << "{\"index\":" << json_string(path) << ",\"files\":" << counts.files << ",\"pe_files\":" << counts.pe_files
              << ",\"analysed\":" << counts.analysed << ",\"reused\":" << counts.reused << ",\"added\":" << counts.added
              << ",\"changed\":" << counts.changed << ",\"removed\":" << counts.removed
              << ",\"duplicates\":" << counts.duplicates << ",\"literal_rescans\":" << counts.literal_rescans
              << ",\"literal_tags\":" << counts.literal_tags << ",\"bytes_analysed\":" << counts.bytes_analysed
              << ",\"problems\":" << counts.problems.size() << "}\n";
    return;
  }
  std::cout << verb << " " << printable(path) << ": " << counts.files << " files, " << counts.pe_files << " PE ("
            << counts.analysed << " analysed, " << counts.reused << " reused, " << counts.duplicates
            << " duplicates of another file); " << counts.added << " added, " << counts.changed << " changed, "
            << counts.removed << " removed; literal evidence for " << counts.literal_tags << " tags ("
            << counts.literal_rescans << " contents searched again)";
  if (!counts.problems.empty()) std::cout << "; " << counts.problems.size() << " problems (on stderr)";
  std::cout << '\n';
}

int run_stats(Index& index, bool json) {
  auto stats = index.stats();
  if (!stats) {
    std::cerr << "tagwho: " << stats.error() << '\n';
    return kError;
  }
  if (json) {
    std::cout << "{\"index\":" << json_string(stats->path) << ",\"schema_version\":" << stats->schema_version
              << ",\"analysis_version\":" << stats->analysis_version << ",\"database_bytes\":" << stats->database_bytes
              << ",\"files\":" << stats->files << ",\"pe_files\":" << stats->pe_files << ",\"not_pe\":" << stats->not_pe
              << ",\"error_files\":" << stats->error_files << ",\"contents\":" << stats->contents
              << ",\"distinct_tags\":" << stats->distinct_tags << ",\"literal_tags\":" << stats->literal_tags
              << ",\"total_bytes\":" << stats->total_bytes << ",\"created_at\":" << stats->created_at
              << ",\"updated_at\":" << stats->updated_at << ",\"machines\":{";
    for (size_t i = 0; i < stats->machines.size(); ++i)
      std::cout << (i ? "," : "") << json_string(stats->machines[i].first) << ':' << stats->machines[i].second;
    std::cout << "},\"hosts\":[";
    for (size_t i = 0; i < stats->hosts.size(); ++i) {
      const IndexStats::Host& host = stats->hosts[i];
      std::cout << (i ? "," : "") << "{\"name\":" << json_string(host.name) << ",\"files\":" << host.files
                << ",\"indexed_at\":" << host.indexed_at << ",\"roots\":[";
      for (size_t r = 0; r < host.roots.size(); ++r) std::cout << (r ? "," : "") << json_string(host.roots[r]);
      std::cout << "]}";
    }
    std::cout << "]}\n";
    return kFound;
  }
  std::cout << "index     " << printable(stats->path) << " (" << stats->database_bytes / 1024 << " KiB, schema "
            << stats->schema_version << ", analysis " << stats->analysis_version << ")\n"
            << "files     " << stats->files << " (" << stats->pe_files << " PE, " << stats->not_pe << " not PE, "
            << stats->error_files << " with errors), " << stats->total_bytes / (1024 * 1024) << " MiB\n"
            << "contents  " << stats->contents << " distinct PE contents\n"
            << "tags      " << stats->distinct_tags << " proven at a call site; literal evidence indexed for "
            << stats->literal_tags << "\n"
            << "machines ";
  for (const auto& [machine, count] : stats->machines) std::cout << ' ' << machine << ' ' << count;
  std::cout << "\ncreated   " << when(stats->created_at) << "\nupdated   " << when(stats->updated_at) << '\n';
  for (const IndexStats::Host& host : stats->hosts) {
    std::cout << "host      " << printable(host.name) << ": " << host.files << " files, indexed " << when(host.indexed_at) << '\n';
    for (const std::string& root : host.roots) std::cout << "  root    " << printable(root) << '\n';
  }
  return kFound;
}

int run_export(Index& index, const std::string& format) {
  bool multi_host = index.host_count() > 1;
  if (format == "pooltag") std::cout << pooltag_header();
  if (format == "csv") std::cout << "host,path,machine,size,tag,value,confidence,evidence,apis,errors\n";
  std::vector<std::pair<std::string, Tag>> skipped;
  auto done = index.for_each_driver([&](const std::string& host, const DriverReport& report) {
    if (format == "jsonl") {
      std::ostringstream line;
      write_driver_json(line, report, nullptr);
      std::string text = line.str();
      if (multi_host) text.insert(1, "\"host\":" + json_string(host) + ",");
      std::cout << text;
    } else if (format == "pooltag") {
      std::vector<Tag> tags;
      std::cout << pooltag_lines(report, &tags);
      for (Tag tag : tags) skipped.emplace_back(report.path, tag);
    } else {
      std::string errors;
      for (const std::string& error : report.errors) errors += (errors.empty() ? "" : "; ") + error;
      std::string prefix = csv(host) + "," + csv(report.path) + "," + machine_name(report.machine) + "," +
                           std::to_string(report.size) + ",";
      if (report.findings.empty()) std::cout << prefix << ",,,0,," << csv(errors) << '\n';
      for (const Finding& finding : report.findings) {
        std::string apis;
        for (const Evidence& e : finding.evidence)
          if (!e.api.empty() && apis.find(e.api) == std::string::npos) apis += (apis.empty() ? "" : " ") + e.api;
        std::cout << prefix << csv(finding.tag.display()) << "," << finding.tag.hex() << ","
                  << confidence_name(finding.best) << "," << finding.evidence.size() << "," << csv(apis) << ","
                  << csv(errors) << '\n';
      }
    }
  });
  std::cout.flush();
  for (const auto& [path, tag] : skipped) report_problem(path, "tag " + tag.display() + " cannot be written in pooltag.txt format");
  if (!done) {
    std::cerr << "tagwho: " << done.error() << '\n';
    return kError;
  }
  return kFound;
}

}  // namespace

std::optional<int> run_index_commands(const IndexCommands& c) {
  if (*c.merge) {
    auto out = Index::open(c.merge_out, true, static_cast<int>(c.wait * 1000));
    if (!out) {
      std::cerr << "tagwho: " << out.error() << '\n';
      return kError;
    }
    auto merged = out->merge_from(c.merge_in);
    if (!merged) {
      std::cerr << "tagwho: " << merged.error() << '\n';
      return kError;
    }
    std::cout << "merged " << *merged << " files from " << c.merge_in.size() << " indexes into " << printable(c.merge_out) << '\n';
    return kFound;
  }
  CLI::App* chosen = nullptr;
  for (CLI::App* sub : {c.build, c.update, c.stats, c.exporter})
    if (*sub) chosen = sub;
  if (!chosen) return std::nullopt;
  std::string path = index_path(c.index);
  if (path.empty()) {
    std::cerr << "tagwho: no index location: set XDG_CACHE_HOME or HOME, or give --index FILE\n";
    return kError;
  }
  bool writes = chosen == c.build;
  auto index = Index::open(path, writes, static_cast<int>(c.wait * 1000));
  if (!index) {
    std::cerr << "tagwho: " << index.error() << '\n';
    return kError;
  }
  if (chosen == c.stats) return run_stats(*index, c.json);
  if (chosen == c.exporter) return run_export(*index, c.format);
  IndexBuildOptions options{thread_count(c.threads), c.host, c.limits};
  auto counts = chosen == c.build ? index->build(c.paths, options) : index->update(options);
  if (!counts) {
    std::cerr << "tagwho: " << counts.error() << '\n';
    return kError;
  }
  print_counts(*counts, path, c.json, chosen == c.build ? "built" : "updated");
  return counts->problems.empty() ? kFound : kError;
}

bool index_available(const IndexOptions& options) {
  if (options.no_index) return false;
  std::string path = index_path(options.index);
  struct stat info {};
  return !path.empty() && (::stat(path.c_str(), &info) == 0 || !options.index.empty());
}

std::optional<int> search_with_index(const std::vector<Tag>& tags, const std::vector<std::string>& paths,
                                     const IndexOptions& options, bool json, size_t max_evidence, unsigned threads,
                                     const Tagdb* tagdb) {
  if (options.no_index) return std::nullopt;
  std::string path = index_path(options.index);
  struct stat info {};
  if (path.empty() || (options.index.empty() && ::stat(path.c_str(), &info) != 0)) return std::nullopt;
  auto index = Index::open(path, false);
  if (!index) {
    std::cerr << "tagwho: " << index.error() << (paths.empty() ? "" : " (scanning instead)") << '\n';
    if (paths.empty()) return kError;
    return std::nullopt;
  }
  auto answer = index->search(tags, paths, tagdb, thread_count(threads));
  if (!answer) {
    std::cerr << "tagwho: " << answer.error() << (paths.empty() ? "" : " (scanning instead)") << '\n';
    if (paths.empty()) return kError;
    return std::nullopt;
  }
  if (!answer->used) {
    if (!options.index.empty()) std::cerr << "tagwho: " << printable(path) << " does not cover these paths: scanning\n";
    return std::nullopt;
  }
  if (answer->analysis_outdated)
    std::cerr << "tagwho: " << printable(path) << ": built by another analysis version: answers may differ from a "
              << "scan (run tagwho index update)\n";
  if (answer->stale_changed + answer->stale_new + answer->stale_gone)
    std::cerr << "tagwho: " << printable(path) << ": out of date for these paths (" << answer->stale_changed
              << " changed, " << answer->stale_new << " new, " << answer->stale_gone
              << " gone since indexed): changed and new files were analysed now; tagwho index update refreshes it\n";
  if (answer->unsearchable)
    std::cerr << "tagwho: " << printable(path) << ": " << answer->unsearchable
              << " indexed contents could not be searched for code, data or raw evidence of these tags (their "
              << "files are on other hosts or gone); call and wrapper evidence is complete\n";
  if (answer->searched && isatty(STDERR_FILENO))
    std::cerr << "tagwho: no indexed driver proves " << (tags.size() == 1 ? "this tag" : "every tag")
              << " at a call site, so literal evidence is not indexed for it: " << answer->searched
              << " files were searched for its bytes\n";
  for (const IndexProblem& p : answer->problems) report_problem(p.path, p.message);
  std::vector<const DriverReport*> reports;
  for (const DriverReport& report : answer->reports) reports.push_back(&report);
  std::vector<SearchRow> rows = rank_search(reports, tags);
  std::vector<UnprovenEntry> unproven = tagdb ? unproven_search(*tagdb, tags, reports) : std::vector<UnprovenEntry>{};
  if (json) {
    write_search_json(std::cout, rows, tagdb);
    write_unproven_json(std::cout, unproven);
    write_missing_json(std::cout, answer->missing);
  } else {
    write_search_table(std::cout, rows, ReportOptions{max_evidence, tagdb});
    write_unproven_table(std::cout, unproven);
    write_missing_table(std::cout, answer->missing);
  }
  std::cout.flush();
  if (!answer->problems.empty()) return kError;
  return rows.empty() ? kNotFound : kFound;
}

}  // namespace tagwho::cli
