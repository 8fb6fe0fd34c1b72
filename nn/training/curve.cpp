#include "curve.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <stdexcept>

namespace tg::nn {

void write_svg_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw std::runtime_error(path + ": cannot write the picture: " + std::strerror(errno));
}

std::string svg_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

void write_curve_svg(const std::string& path, const std::vector<EpochRecord>& history,
                     const std::string& metric_name, const MetricAxis& axis) {
  const double W = 640, H = 360, left = 60, right = 60, top = 40, bottom = 50;
  const double pw = W - left - right, ph = H - top - bottom;
  double max_loss = 1e-9, min_metric = history.empty() ? 0 : history[0].dev_metric,
         max_metric = min_metric;
  for (const auto& r : history) {
    max_loss = std::max(max_loss, r.train_loss);
    min_metric = std::min(min_metric, r.dev_metric);
    max_metric = std::max(max_metric, r.dev_metric);
  }
  if (max_metric - min_metric < 0.01) min_metric = std::max(0.0, max_metric - 0.01);
  const std::size_t n = std::max<std::size_t>(history.size(), 2);
  const auto x = [&](std::size_t i) { return left + pw * i / (n - 1); };
  const auto y_loss = [&](double v) { return top + ph * (1 - v / max_loss); };
  const auto y_metric = [&](double v) {
    return top + ph * (1 - (v - min_metric) / (max_metric - min_metric));
  };
  std::ostringstream os;
  os << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H
     << "' font-family='sans-serif' font-size='12'>\n"
     << "<rect width='100%' height='100%' fill='white'/>\n"
     << "<text x='" << W / 2
     << "' y='22' text-anchor='middle' font-size='15'>training loss and dev "
     << svg_escape(metric_name) << " per epoch</text>\n"
     << "<rect x='" << left << "' y='" << top << "' width='" << pw << "' height='" << ph
     << "' fill='none' stroke='#999'/>\n";
  for (int k = 0; k <= 4; ++k) {
    const double f = k / 4.0;
    os << "<text x='" << left - 6 << "' y='" << top + ph * (1 - f) + 4
       << "' text-anchor='end' fill='#1f77b4'>" << std::setprecision(3) << max_loss * f
       << "</text>\n"
       << "<text x='" << W - right + 6 << "' y='" << top + ph * (1 - f) + 4 << "' fill='#d62728'>"
       << std::setprecision(4) << axis.scale * (min_metric + (max_metric - min_metric) * f)
       << (axis.percent ? "%" : "") << "</text>\n";
  }
  for (std::size_t i = 0; i < history.size(); ++i)
    os << "<text x='" << x(i) << "' y='" << H - bottom + 16 << "' text-anchor='middle'>"
       << history[i].epoch << "</text>\n";
  os << "<text x='" << W / 2 << "' y='" << H - 12 << "' text-anchor='middle'>epoch</text>\n";
  const auto line = [&](auto y, auto value, const char* color) {
    os << "<polyline fill='none' stroke='" << color << "' stroke-width='2' points='";
    for (std::size_t i = 0; i < history.size(); ++i)
      os << x(i) << "," << y(value(history[i])) << " ";
    os << "'/>\n";
    for (std::size_t i = 0; i < history.size(); ++i)
      os << "<circle cx='" << x(i) << "' cy='" << y(value(history[i])) << "' r='3' fill='" << color
         << "'/>\n";
  };
  line(
      y_loss, [](const EpochRecord& r) { return r.train_loss; }, "#1f77b4");
  line(
      y_metric, [](const EpochRecord& r) { return r.dev_metric; }, "#d62728");
  os << "<text x='" << left + 8 << "' y='" << top + 16
     << "' fill='#1f77b4'>train loss (left)</text>\n"
     << "<text x='" << left + 8 << "' y='" << top + 32 << "' fill='#d62728'>dev "
     << svg_escape(metric_name) << " (right)</text>\n</svg>\n";
  write_svg_file(path, os.str());
}

}  // namespace tg::nn
