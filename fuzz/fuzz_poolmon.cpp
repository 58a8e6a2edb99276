// libFuzzer target: poolmon -n / !poolused text through the parser, then ordering, ranking and output.
#include <cstdint>
#include <sstream>
#include <string_view>

#include "tagwho/poolmon.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // The same text as two snapshots (its two halves as well): ranking sees a series.
  std::vector<tagwho::PoolSnapshot> snapshots;
  snapshots.push_back(tagwho::parse_pool_log(text, "log1"));
  snapshots.push_back(tagwho::parse_pool_log(text.substr(size / 2), "log2"));
  snapshots.push_back(tagwho::parse_pool_log(text.substr(0, size / 2), "log10"));
  tagwho::order_pool_logs(snapshots, tagwho::PoolOrder::name);
  tagwho::PoolAnalysis analysis = tagwho::analyse_pool_logs(snapshots);
  std::ostringstream out;
  tagwho::PoolPlotOptions options;
  tagwho::write_pool_svg(out, analysis, options);
  for (const tagwho::PoolSeries& series : analysis.ranked) {
    tagwho::sparkline(series.bytes);
    tagwho::format_bytes(series.growth, true);
  }
  return 0;
}
