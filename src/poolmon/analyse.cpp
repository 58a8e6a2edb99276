// From snapshots to suspects: one series per (tag, pool), measured and ranked (README "Scoring").
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "tagwho/poolmon.hpp"

namespace tagwho {

const char* pool_trend_name(PoolTrend trend) {
  switch (trend) {
    case PoolTrend::single: return "single";
    case PoolTrend::leak: return "leak";
    case PoolTrend::grows: return "grows";
    case PoolTrend::burst: return "burst";
    case PoolTrend::flat: return "flat";
    case PoolTrend::shrinks: return "shrinks";
  }
  return "?";
}

namespace {
// a - b, clamped to the int64_t range: a hostile log may hold any 64-bit value, negative ones too.
int64_t saturating_sub(int64_t a, int64_t b) {
  int64_t result = 0;
  if (!__builtin_sub_overflow(a, b, &result)) return result;
  return b < 0 ? INT64_MAX : INT64_MIN;
}
using Wide = __int128;  // the trend tests multiply byte counts: no overflow for any int64_t
}  // namespace

void measure_pool_series(PoolSeries& s, const std::vector<std::optional<int64_t>>& times) {
  const std::vector<int64_t>& b = s.bytes;
  if (b.empty()) return;
  s.bytes_first = b.front();
  s.bytes_last = b.back();
  s.peak = *std::max_element(b.begin(), b.end());
  s.growth = saturating_sub(s.bytes_last, s.bytes_first);
  s.intervals = b.size() - 1;
  s.grew = 0;
  for (size_t i = 1; i < b.size(); ++i)
    if (b[i] > b[i - 1]) ++s.grew;
  if (s.intervals == 0) {
    s.trend = PoolTrend::single;
    s.steadiness = 0;
    s.growth_per_interval = 0;
    s.growth_per_hour.reset();
    s.score = double(s.bytes_last);
    return;
  }
  s.steadiness = double(s.grew) / double(s.intervals);
  s.growth_per_interval = double(s.growth) / double(s.intervals);
  s.growth_per_hour.reset();
  if (times.size() == b.size() && times.front() && times.back() && *times.back() > *times.front())
    s.growth_per_hour = double(s.growth) * 3600.0 / (double(*times.back()) - double(*times.front()));
  // The rise is measured from the start; what the tag gave back, from its peak. Moves smaller than 5% of the
  // tag's peak are the wobble every busy tag shows: they make neither a burst nor a trend. Steady growth
  // counts as a leak from 1% of the peak on (a slow leak in a big tag).
  int64_t rise = saturating_sub(s.peak, s.bytes_first);
  int64_t fallback = saturating_sub(s.peak, s.bytes_last);
  auto significant = [&](int64_t move) { return move > 0 && 20 * Wide(move) >= s.peak; };
  if (s.growth > 0 && 100 * Wide(s.growth) >= s.peak && s.intervals >= 2 && 3 * s.grew >= 2 * s.intervals &&
      10 * Wide(fallback) <= s.growth)
    s.trend = PoolTrend::leak;
  else if (significant(rise) && fallback > 0 && 2 * Wide(fallback) >= rise)
    s.trend = PoolTrend::burst;
  else if (significant(s.growth))
    s.trend = PoolTrend::grows;
  else if (significant(saturating_sub(0, s.growth)))
    s.trend = PoolTrend::shrinks;
  else
    s.trend = PoolTrend::flat;
  s.score = double(std::max<int64_t>(s.growth, 0)) * s.steadiness;
}

PoolAnalysis analyse_pool_logs(const std::vector<PoolSnapshot>& snapshots) {
  PoolAnalysis analysis;
  size_t n = snapshots.size();
  for (const PoolSnapshot& snapshot : snapshots) {
    analysis.sources.push_back(snapshot.source);
    analysis.times.push_back(snapshot.time);
  }
  analysis.timed = n >= 2;
  for (size_t i = 0; i < n; ++i)
    if (!analysis.times[i] || (i && *analysis.times[i] <= *analysis.times[i - 1])) analysis.timed = false;
  std::vector<std::optional<int64_t>> times = analysis.timed ? analysis.times : std::vector<std::optional<int64_t>>{};

  std::map<std::pair<uint32_t, int>, PoolSeries> by_key;
  for (size_t i = 0; i < n; ++i) {
    for (const PoolRow& row : snapshots[i].rows) {
      PoolSeries& s = by_key[{row.tag.value, int(row.kind)}];
      if (s.bytes.empty()) {
        s.tag = row.tag;
        s.tag_text = row.tag_text;
        s.kind = row.kind;
        s.bytes.assign(n, 0);
        s.outstanding.assign(n, 0);
      }
      s.tag_uncertain = s.tag_uncertain || row.tag_uncertain;
      s.bytes[i] = row.bytes;  // a repeated (tag, pool) in one file: the later row counts
      s.outstanding[i] = row.outstanding;
      if (!row.note.empty()) s.note = row.note;
    }
  }
  for (auto& [key, s] : by_key) {
    if (std::all_of(s.bytes.begin(), s.bytes.end(), [](int64_t v) { return v == 0; })) continue;
    measure_pool_series(s, times);
    analysis.ranked.push_back(std::move(s));
  }
  std::stable_sort(analysis.ranked.begin(), analysis.ranked.end(), [](const PoolSeries& a, const PoolSeries& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.growth != b.growth) return a.growth > b.growth;
    if (a.bytes_last != b.bytes_last) return a.bytes_last > b.bytes_last;
    if (a.tag_text != b.tag_text) return a.tag_text < b.tag_text;
    return a.kind < b.kind;
  });
  return analysis;
}

std::string sparkline(const std::vector<int64_t>& values) {
  static const char* const kBars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  std::string out;
  if (values.empty()) return out;
  int64_t low = *std::min_element(values.begin(), values.end());
  int64_t high = *std::max_element(values.begin(), values.end());
  for (int64_t v : values) {
    size_t level = 3;
    if (high > low) level = size_t(std::lround(double(v - low) * 7.0 / double(high - low)));
    out += kBars[std::min<size_t>(level, 7)];
  }
  return out;
}

std::string format_bytes(int64_t bytes, bool signed_form) {
  static const char* const kUnits[] = {"KB", "MB", "GB", "TB"};
  std::string sign = bytes < 0 ? "-" : (signed_form && bytes > 0 ? "+" : "");
  double magnitude = std::fabs(double(bytes));
  char buffer[48];
  if (magnitude < 1024) {
    std::snprintf(buffer, sizeof buffer, "%s%lld B", sign.c_str(), static_cast<long long>(std::llabs(bytes)));
    return buffer;
  }
  size_t unit = 0;
  magnitude /= 1024;
  while (magnitude >= 1024 && unit + 1 < std::size(kUnits)) {
    magnitude /= 1024;
    ++unit;
  }
  std::snprintf(buffer, sizeof buffer, magnitude < 10 ? "%s%.2f %s" : "%s%.1f %s", sign.c_str(), magnitude,
                kUnits[unit]);
  return buffer;
}

}  // namespace tagwho
