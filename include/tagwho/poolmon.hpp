// Pool usage logs: `poolmon -n` snapshot files and WinDbg `!poolused` output, read into rows, put in
// order as a series, and ranked to find the tag that leaks (README "From poolmon logs to the driver").
// Parsing never fails: every line is a row, a known non-row line, or reported with its line number.
#pragma once
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "tagwho/report.hpp"
#include "tagwho/result.hpp"
#include "tagwho/tag.hpp"
#include "tagwho/tagdb.hpp"

namespace tagwho {

enum class PoolKind { nonpaged, paged };
const char* pool_kind_name(PoolKind kind);  // "Nonp", "Paged" (as poolmon writes them)

// Where a row came from.
enum class PoolLogLayout {
  unknown,
  poolmon_x64,          // poolmon -n, 64-bit widths (%18I64d ...)
  poolmon_x86,          // poolmon -n, 32-bit widths (%9ld ...)
  poolmon_interactive,  // the interactive display copied to a file: "Allocs ( delta )" columns
  poolused_old,         // !poolused, older kdexts: description glued to the last number
  poolused_new,         // !poolused, newer debuggers: a TAB before the description
};
const char* pool_log_layout_name(PoolLogLayout layout);  // "poolmon-x64", ..., "poolused-new"

// One tag in one pool in one snapshot.
struct PoolRow {
  Tag tag;                    // the 4 characters as written, little-endian ('Leak' = 0x6b61654c)
  std::string tag_text;       // the 4 characters as the log shows them ("Cc  ", "rx..")
  bool tag_uncertain = false; // !poolused writes non-printable bytes as '.': the real value may differ
  PoolKind kind = PoolKind::nonpaged;
  std::optional<int64_t> allocs, frees;  // poolmon: allocations and frees since boot
  int64_t outstanding = 0;    // allocations in use: poolmon Diff, !poolused Allocs
  int64_t bytes = 0;          // bytes in use: poolmon Bytes, !poolused Used
  // poolmon -g Mapped_Driver ("Unknown Driver", "[nt!ps - Thread objects]"), or !poolused's description
  // ("PS/2 kb and mouse , Binary: i8042prt.sys", "UNKNOWN pooltag 'NdNp', please update pooltag.txt").
  std::string note;
  PoolLogLayout layout = PoolLogLayout::unknown;
  size_t line = 0;            // 1-based
};

// A line that is neither a row nor a known header, prompt, summary or total line.
struct PoolLogProblem {
  size_t line = 0;
  std::string text;
};

// One log file: one snapshot of pool usage.
struct PoolSnapshot {
  std::string source;
  std::optional<int64_t> time;       // unix seconds (the file's mtime) when known
  PoolLogLayout layout = PoolLogLayout::unknown;  // of the first row
  bool mapped_driver = false;        // poolmon -g/-c: the Mapped_Driver column header was seen
  bool summary = false;              // the Memory:/Commit: lines were present
  std::vector<PoolRow> rows;         // in file order; !poolused rows give one Nonp and one Paged row
  std::vector<PoolLogProblem> unrecognised;
  size_t duplicates = 0;             // rows whose (tag, pool) appeared earlier in the file (the last counts)
};

// Parses the text of a poolmon -n file or !poolused output (either, or both, in one text).
PoolSnapshot parse_pool_log(std::string_view text, const std::string& source);
// Reads and parses a file; time is its mtime. An error when it cannot be read.
Result<PoolSnapshot> load_pool_log(const std::string& path);

// Puts snapshots in series order: by file name (digit runs compared as numbers, so log9 comes before
// log10; ties by full path), or by time (mtime; ties by name).
enum class PoolOrder { name, mtime };
void order_pool_logs(std::vector<PoolSnapshot>& snapshots, PoolOrder order);

// --- Ranking ---------------------------------------------------------------------------------------

// How bytes moved over the series.
enum class PoolTrend {
  single,   // one snapshot: nothing to compare
  leak,     // 3+ snapshots, ended higher by 1% of its peak or more, grew in at least 2/3 of the intervals,
            // and ended within a tenth of its growth below its peak
  burst,    // rose by 5% of its peak or more, then gave back at least half of the rise
  grows,    // ended higher by 5% of its peak or more, not steadily enough to call a leak
  shrinks,  // ended lower by 5% of its peak or more
  flat,     // everything else: moves under 5% of its peak
};
const char* pool_trend_name(PoolTrend trend);  // "single", "leak", "grows", "burst", "flat", "shrinks"

// One (tag, pool) across the series.
struct PoolSeries {
  Tag tag;
  std::string tag_text;
  bool tag_uncertain = false;
  PoolKind kind = PoolKind::nonpaged;
  std::vector<int64_t> bytes;        // one per snapshot, 0 where the tag is absent
  std::vector<int64_t> outstanding;  // likewise
  std::string note;                  // the latest non-empty Mapped_Driver / !poolused description
  // Measures (README): growth = last - first; steadiness = intervals that grew / intervals;
  // score = max(growth, 0) * steadiness over a series, bytes for a single snapshot.
  int64_t bytes_first = 0, bytes_last = 0, peak = 0;
  int64_t growth = 0;
  size_t intervals = 0, grew = 0;
  double steadiness = 0;
  double growth_per_interval = 0;
  std::optional<double> growth_per_hour;  // when every snapshot has a time and they increase
  PoolTrend trend = PoolTrend::single;
  double score = 0;
};

struct PoolAnalysis {
  std::vector<std::string> sources;  // the snapshots in series order
  std::vector<std::optional<int64_t>> times;
  bool timed = false;                // times known and strictly increasing: per-hour rates
  std::vector<PoolSeries> ranked;    // best suspect first; series that are 0 throughout are left out
};

// Builds one series per (tag, pool) from snapshots already in order, measures and ranks them: with one
// snapshot by bytes; with several by score, then growth, then last bytes, then tag and pool.
PoolAnalysis analyse_pool_logs(const std::vector<PoolSnapshot>& snapshots);
// Measures one series (bytes filled in; times as in PoolAnalysis, or empty).
void measure_pool_series(PoolSeries& series, const std::vector<std::optional<int64_t>>& times);

// --- Output helpers ----------------------------------------------------------------------------------

// A unicode sparkline of the values (one of ▁▂▃▄▅▆▇█ per value, scaled between their minimum and
// maximum; all ▄ when they are equal).
std::string sparkline(const std::vector<int64_t>& values);
// "512 B", "1.5 KB", "12.0 MB", "3.25 GB" (binary units); signed_form adds '+' to positive values.
std::string format_bytes(int64_t bytes, bool signed_form = false);

struct PoolPlotOptions {
  size_t top = 10;           // series drawn: the first `top` of the ranking
  std::string title;         // "" = "Pool bytes over N snapshots"
};
// A self-contained SVG line chart of bytes over the series for the top suspects: x = the snapshots
// (labelled with their file names, and times when known), y = bytes with KB/MB/GB ticks, a legend.
void write_pool_svg(std::ostream& out, const PoolAnalysis& analysis, const PoolPlotOptions& options);


// --- Suspects with their owners ----------------------------------------------------------------------

// A ranked series with the drivers that use its tag (a search's answers, best first).
struct PoolSuspect {
  const PoolSeries* series = nullptr;
  size_t rank = 0;                // 1-based
  std::vector<SearchRow> owners;  // rank_search order; empty when none found or not attributed
  bool attributed = false;        // drivers were searched (a scan of --root or the index)
};

struct PoolReportOptions {
  size_t max_evidence = 1;       // evidence lines per owner in the table (0 = all)
  size_t max_weak_owners = 3;    // owners with only code/data/raw evidence shown when none is proven
  const Tagdb* tagdb = nullptr;  // the pooltag.txt entries of each suspect's tag
};

// One block per suspect: a summary line (rank, tag, pool, trend, bytes first -> last, growth, rates,
// sparkline), what the log says about the tag, its owners (search table rows, indented), tagdb entries.
void write_pool_table(std::ostream& out, const std::vector<PoolSuspect>& suspects, const PoolReportOptions& options);
// One JSON object per suspect, best first: rank, tag, value, type, trend, bytes_first, bytes_last, peak,
// growth, intervals, grew, steadiness, growth_per_interval, growth_per_hour, score, bytes (the series),
// note, owners (each a `tagwho --json` search line), tagdb (the entries for the tag).
void write_pool_json(std::ostream& out, const std::vector<PoolSuspect>& suspects, const Tagdb* tagdb);

}  // namespace tagwho
