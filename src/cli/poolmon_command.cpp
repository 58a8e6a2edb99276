// tagwho poolmon LOG... [--root PATH]... : read the logs, rank the tags, search the drivers for the top
// suspects' tags in one pass, print. No analysis here.
#include "poolmon_command.hpp"

#include <algorithm>
#include <fstream>
#include <iostream>
#include <thread>

#include "index_commands.hpp"
#include "common.hpp"
#include "tagwho/index.hpp"
#include "tagwho/poolmon.hpp"
#include "tagwho/report.hpp"
#include "tagwho/scan.hpp"

namespace tagwho::cli {
namespace {

// Unrecognised lines named per log on stderr; the rest are counted.
constexpr size_t kProblemLinesShown = 10;



// The drivers that use the tags: one scan of the roots (folders, Windows roots, disk images) for all of them.
std::vector<DriverReport> scan_roots(const std::vector<Tag>& tags, const std::vector<std::string>& roots,
                                     unsigned threads, bool& had_error) {
  auto scanner = Scanner::create(ScanRequest{tags, false});
  if (!scanner) {
    std::cerr << "tagwho: " << scanner.error() << '\n';
    had_error = true;
    return {};
  }
  bool scan_error = false;
  std::vector<DriverReport> reports;
  for (FileResult& result : scan_paths(*scanner, roots, threads, scan_error)) reports.push_back(std::move(result.report));
  had_error = had_error || scan_error;
  return reports;
}

}  // namespace

struct PoolmonCommand {
  CLI::App* app = nullptr;
  std::vector<std::string> logs;
  std::vector<std::string> roots;
  size_t top = 10;
  bool json = false;
  std::string plot;
  std::string order = "name";
  size_t max_evidence = 1;
  unsigned threads = 0;
  std::vector<std::string> tagdb_files;
  bool no_tagdb = false;
  IndexOptions index;  // --index FILE, --no-index: where the suspects are looked up without --root
};

std::shared_ptr<PoolmonCommand> add_poolmon_command(CLI::App& app) {
  auto command = std::make_shared<PoolmonCommand>();
  CLI::App* sub = app.add_subcommand(
      "poolmon", "Rank the tags of poolmon -n / !poolused logs (growth over a series) and name their drivers");
  command->app = sub;
  sub->add_option("LOG", command->logs, "poolmon -n snapshot files or WinDbg !poolused output, one snapshot each")
      ->required();
  sub->add_option("--root", command->roots, "Driver files or folders to search for the suspects' tags (repeatable)")
      ->allow_extra_args(false);
  sub->add_option("--top", command->top, "Suspects reported (and attributed)")->default_val(10);
  sub->add_flag("--json", command->json, "Print one JSON object per suspect, best first");
  sub->add_option("--plot", command->plot, "Write an SVG chart of bytes over the series for the top suspects");
  sub->add_option("--order", command->order, "Series order: name (natural: log9 before log10) or mtime")
      ->check(CLI::IsMember({"name", "mtime"}))
      ->default_val("name");
  sub->add_option("--max-evidence", command->max_evidence, "Evidence lines per owner in the table (0 = all)")
      ->default_val(1);
  sub->add_option("-j,--threads", command->threads, "Files analysed in parallel (default: one per core)");
  sub->add_option("--tagdb", command->tagdb_files, "A pooltag.txt to use (repeatable; later files win ties)")
      ->allow_extra_args(false);
  sub->add_flag("--no-tagdb", command->no_tagdb, "Use no pool tag database");
  add_index_options(*sub, command->index);
  return command;
}

std::optional<int> run_poolmon_command(const PoolmonCommand& command, const TagdbOpener& open_tagdb) {
  if (!*command.app) return std::nullopt;
  bool had_error = false;

  // 1. The logs, each one snapshot; every line that is not a row is named (up to a limit) or counted.
  std::vector<PoolSnapshot> snapshots;
  for (const std::string& path : command.logs) {
    auto snapshot = load_pool_log(path);
    if (!snapshot) {
      report_problem(path, snapshot.error());
      had_error = true;
      continue;
    }
    const std::vector<PoolLogProblem>& lines = snapshot->unrecognised;
    for (size_t i = 0; i < lines.size() && i < kProblemLinesShown; ++i)
      std::cerr << "tagwho: " << printable(path) << ':' << lines[i].line
                << ": not a poolmon -n or !poolused line: " << printable(lines[i].text) << '\n';
    if (lines.size() > kProblemLinesShown)
      report_problem(path, std::to_string(lines.size() - kProblemLinesShown) + " more lines not recognised");
    if (snapshot->rows.empty()) {
      report_problem(path, "no poolmon -n or !poolused rows: not a pool usage log");
      had_error = true;
      continue;
    }
    if (snapshot->duplicates)
      report_problem(path, std::to_string(snapshot->duplicates) +
                        " rows repeat a tag and pool listed earlier in the file (several snapshots in one file?): "
                        "the last of each counts");
    snapshots.push_back(std::move(*snapshot));
  }
  order_pool_logs(snapshots, command.order == "mtime" ? PoolOrder::mtime : PoolOrder::name);
  PoolAnalysis analysis = analyse_pool_logs(snapshots);

  // 2. The suspects and their tags.
  size_t count = std::min(command.top, analysis.ranked.size());
  std::vector<Tag> tags;
  for (size_t i = 0; i < count; ++i) {
    Tag tag = analysis.ranked[i].tag.without_protected_bit();
    if (std::find(tags.begin(), tags.end(), tag) == tags.end()) tags.push_back(tag);
  }

  // 3. The database, then the drivers: a scan of --root, else the index, else none.
  auto tagdb = open_tagdb(command.tagdb_files, command.no_tagdb, command.roots);
  if (!tagdb) {
    std::cerr << "tagwho: " << tagdb.error() << '\n';
    return kError;
  }
  const Tagdb* db = *tagdb ? &**tagdb : nullptr;
  std::vector<DriverReport> reports;
  bool attributed = false;
  if (!tags.empty() && !command.roots.empty()) {
    reports = scan_roots(tags, command.roots, command.threads, had_error);
    attributed = true;
  } else if (!tags.empty()) {
    if (index_available(command.index)) {
      std::string path = command.index.index.empty() ? default_index_path() : command.index.index;
      auto index = Index::open(path, false);
      auto answer = index ? index->search(tags, {}, db, thread_count(command.threads))
                          : Result<IndexSearch>{Error{index.error()}};
      if (!answer) {
        report_problem(path, answer.error());
        had_error = true;
      } else {
        for (const IndexProblem& p : answer->problems) report_problem(p.path, p.message);
        reports = std::move(answer->reports);
        attributed = true;
      }
    }
    if (!attributed)
      std::cerr << "tagwho: no --root given and no index: the suspects are not attributed to drivers (add --root "
                   "PATH, e.g. C:/Windows/System32/drivers, or build an index with tagwho index build PATH)\n";
  }
  std::vector<const DriverReport*> report_pointers;
  for (const DriverReport& report : reports) report_pointers.push_back(&report);
  std::vector<SearchRow> rows = rank_search(report_pointers, tags);

  std::vector<PoolSuspect> suspects;
  for (size_t i = 0; i < count; ++i) {
    PoolSuspect suspect;
    suspect.series = &analysis.ranked[i];
    suspect.rank = i + 1;
    suspect.attributed = attributed;
    Tag tag = suspect.series->tag.without_protected_bit();
    for (const SearchRow& row : rows)
      if (row.finding->tag == tag) suspect.owners.push_back(row);
    suspects.push_back(std::move(suspect));
  }

  // 4. Print, and draw.
  if (command.json)
    write_pool_json(std::cout, suspects, db);
  else
    write_pool_table(std::cout, suspects, PoolReportOptions{command.max_evidence, 3, db});
  std::cout.flush();
  if (!command.plot.empty()) {
    std::ofstream svg(command.plot, std::ios::binary | std::ios::trunc);
    if (svg) write_pool_svg(svg, analysis, PoolPlotOptions{command.top, ""});
    svg.close();
    if (!svg) {
      report_problem(command.plot, "cannot write the chart");
      had_error = true;
    }
  }
  if (had_error) return kError;
  return suspects.empty() ? kNotFound : kFound;
}

}  // namespace tagwho::cli
