// The --plot chart: plain SVG 1.1 (no script, no external resources), readable in any browser.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "tagwho/poolmon.hpp"

namespace tagwho {
namespace {

std::string xml_text(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\x%02x", c);
          out += buffer;
        } else {
          out += static_cast<char>(c);  // UTF-8 passes through (file names)
        }
    }
  }
  return out;
}

std::string number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f", value);
  return buffer;
}

std::string base_name(const std::string& path) { return path.substr(path.find_last_of('/') + 1); }

// A step of 1, 2, 2.5 or 5 times a power of ten, giving about `count` intervals up to `high`.
double nice_step(double high, int count) {
  double raw = high / count;
  double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * power >= raw) return m * power;
  return 10 * power;
}

std::string tick_label(double value) {
  char buffer[32];
  if (std::fabs(value - std::round(value)) < 1e-9)
    std::snprintf(buffer, sizeof buffer, "%.0f", value);
  else
    std::snprintf(buffer, sizeof buffer, "%.1f", value);
  return buffer;
}

std::string hours_label(double hours) {
  char buffer[32];
  if (hours < 1)
    std::snprintf(buffer, sizeof buffer, "+%.0f min", hours * 60);
  else
    std::snprintf(buffer, sizeof buffer, "+%.1f h", hours);
  return buffer;
}

}  // namespace

void write_pool_svg(std::ostream& out, const PoolAnalysis& analysis, const PoolPlotOptions& options) {
  static const char* const kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  const double width = 1000, height = 600, left = 90, right = 290, top = 56, bottom = 160;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  size_t n = analysis.sources.size();
  size_t shown = std::min(options.top, analysis.ranked.size());

  int64_t high = 0;
  for (size_t s = 0; s < shown; ++s)
    for (int64_t v : analysis.ranked[s].bytes) high = std::max(high, v);
  // The unit of the y axis follows the largest value drawn.
  const char* unit = "bytes";
  double scale = 1;
  if (high >= (int64_t(1) << 30)) unit = "GB", scale = double(int64_t(1) << 30);
  else if (high >= (int64_t(1) << 20)) unit = "MB", scale = double(int64_t(1) << 20);
  else if (high >= 1024) unit = "KB", scale = 1024;
  double top_value = std::max(1.0, double(high) / scale);
  double step = nice_step(top_value, 5);
  double axis_max = std::ceil(top_value / step - 1e-9) * step;

  auto x_of = [&](size_t i) { return n <= 1 ? left + plot_w / 2 : left + plot_w * double(i) / double(n - 1); };
  auto y_of = [&](int64_t v) { return top + plot_h - plot_h * (double(v) / scale) / axis_max; };

  std::string title = options.title;
  if (title.empty())
    title = "Pool bytes in use over " + std::to_string(n) + (n == 1 ? " snapshot" : " snapshots") + ": top " +
            std::to_string(shown) + (shown == 1 ? " suspect" : " suspects");

  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << width << ' ' << height << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<title>" << xml_text(title) << "</title>\n"
      << "<rect x=\"0\" y=\"0\" width=\"" << width << "\" height=\"" << height << "\" fill=\"white\"/>\n"
      << "<text x=\"" << left << "\" y=\"28\" font-size=\"16\" font-weight=\"bold\">" << xml_text(title)
      << "</text>\n";

  // Grid and y ticks.
  out << "<g stroke=\"#dddddd\" stroke-width=\"1\">\n";
  for (double v = 0; v <= axis_max + step / 2; v += step) {
    double y = top + plot_h - plot_h * v / axis_max;
    out << "<line x1=\"" << left << "\" y1=\"" << number(y) << "\" x2=\"" << left + plot_w << "\" y2=\""
        << number(y) << "\"/>\n";
  }
  out << "</g>\n<g text-anchor=\"end\" fill=\"#333333\">\n";
  for (double v = 0; v <= axis_max + step / 2; v += step) {
    double y = top + plot_h - plot_h * v / axis_max;
    out << "<text x=\"" << left - 8 << "\" y=\"" << number(y + 4) << "\">" << tick_label(v) << ' ' << unit
        << "</text>\n";
  }
  out << "</g>\n";

  // Axes.
  out << "<g stroke=\"#333333\" stroke-width=\"1.5\">\n"
      << "<line x1=\"" << left << "\" y1=\"" << top << "\" x2=\"" << left << "\" y2=\"" << top + plot_h << "\"/>\n"
      << "<line x1=\"" << left << "\" y1=\"" << top + plot_h << "\" x2=\"" << left + plot_w << "\" y2=\""
      << top + plot_h << "\"/>\n</g>\n";
  out << "<text transform=\"translate(18," << number(top + plot_h / 2) << ") rotate(-90)\" text-anchor=\"middle\">"
      << "bytes in use (" << unit << ")</text>\n";
  out << "<text x=\"" << number(left + plot_w / 2) << "\" y=\"" << height - 10 << "\" text-anchor=\"middle\">"
      << (analysis.timed ? "snapshot (log file, time since the first)" : "snapshot (log file, in series order)")
      << "</text>\n";

  // X ticks: at most about 16 labels.
  size_t every = std::max<size_t>(1, (n + 15) / 16);
  out << "<g fill=\"#333333\" font-size=\"11\">\n";
  for (size_t i = 0; i < n; ++i) {
    double x = x_of(i);
    out << "<line x1=\"" << number(x) << "\" y1=\"" << top + plot_h << "\" x2=\"" << number(x) << "\" y2=\""
        << top + plot_h + 5 << "\" stroke=\"#333333\"/>\n";
    if (i % every && i + 1 != n) continue;
    std::string label = base_name(analysis.sources[i]);
    if (analysis.timed && i) label += " (" + hours_label(double(*analysis.times[i] - *analysis.times[0]) / 3600) + ")";
    out << "<text transform=\"translate(" << number(x + 4) << ',' << top + plot_h + 16
        << ") rotate(35)\" text-anchor=\"start\">" << xml_text(label) << "</text>\n";
  }
  out << "</g>\n";

  // One line per suspect, best first (drawn last, so it lies on top).
  for (size_t k = shown; k-- > 0;) {
    const PoolSeries& s = analysis.ranked[k];
    const char* colour = kColours[k % std::size(kColours)];
    out << "<g stroke=\"" << colour << "\" fill=\"" << colour << "\">\n";
    if (n > 1) {
      out << "<polyline fill=\"none\" stroke-width=\"" << (k == 0 ? 3 : 2) << "\" points=\"";
      for (size_t i = 0; i < n; ++i) out << (i ? " " : "") << number(x_of(i)) << ',' << number(y_of(s.bytes[i]));
      out << "\"/>\n";
    }
    for (size_t i = 0; i < n; ++i)
      out << "<circle cx=\"" << number(x_of(i)) << "\" cy=\"" << number(y_of(s.bytes[i])) << "\" r=\"3\"/>\n";
    out << "</g>\n";
  }

  // Legend: rank, tag, pool, trend and growth (or bytes for one snapshot).
  double lx = left + plot_w + 24, ly = top + 8;
  out << "<text x=\"" << lx << "\" y=\"" << ly << "\" font-weight=\"bold\">suspects, best first</text>\n";
  for (size_t k = 0; k < shown; ++k) {
    const PoolSeries& s = analysis.ranked[k];
    double y = ly + 22 * double(k + 1);
    std::string text = std::to_string(k + 1) + ". " + s.tag_text + " " + pool_kind_name(s.kind) + "  ";
    if (n > 1)
      text += std::string(pool_trend_name(s.trend)) + ", " + format_bytes(s.growth, true);
    else
      text += format_bytes(s.bytes_last);
    out << "<rect x=\"" << lx << "\" y=\"" << number(y - 10) << "\" width=\"18\" height=\"4\" fill=\""
        << kColours[k % std::size(kColours)] << "\"/>\n"
        << "<text x=\"" << lx + 26 << "\" y=\"" << number(y - 4) << "\" xml:space=\"preserve\">" << xml_text(text)
        << "</text>\n";
  }
  out << "</svg>\n";
}

}  // namespace tagwho
