#include "plots.hpp"

#include "../nn/training/curve.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace tg::models {

using nn::svg_escape;
using nn::write_svg_file;

namespace {

// A picture's opening: its size, a white background and the title.
void begin_svg(std::ostringstream& os, double W, double H, const std::string& title) {
  os << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H
     << "' font-family='sans-serif' font-size='12'>\n"
     << "<rect width='100%' height='100%' fill='white'/>\n"
     << "<text x='10' y='20' font-size='14'>" << svg_escape(title) << "</text>\n";
}

}  // namespace

void write_bars_svg(const std::string& path, const std::vector<std::string>& groups,
                    const std::vector<std::string>& series,
                    const std::vector<std::vector<double>>& values, const std::string& title,
                    double floor) {
  static const char* const kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c",
                                        "#d62728", "#9467bd", "#8c564b"};
  const double bar = 12, gap = 14, left = 60, top = 60, ph = 260, bottom = 70;
  const double group_width = bar * series.size() + gap;
  const double W = std::max(left + group_width * groups.size() + 20, 20 + 8.0 * title.size());
  const double H = top + ph + bottom;
  const auto y = [&](double v) {
    return top + ph * (1 - std::clamp((v - floor) / (1 - floor), 0.0, 1.0));
  };
  std::ostringstream os;
  begin_svg(os, W, H, title);
  for (int k = 0; k <= 4; ++k) {
    const double v = floor + (1 - floor) * k / 4.0;
    os << "<line x1='" << left << "' x2='" << W - 10 << "' y1='" << y(v) << "' y2='" << y(v)
       << "' stroke='#eee'/>\n"
       << "<text x='" << left - 6 << "' y='" << y(v) + 4 << "' text-anchor='end'>"
       << std::setprecision(3) << 100 * v << "%</text>\n";
  }
  for (std::size_t s = 0; s < series.size(); ++s)
    os << "<rect x='" << left + 110 * s << "' y='32' width='10' height='10' fill='"
       << kColors[s % 6] << "'/>"
       << "<text x='" << left + 110 * s + 14 << "' y='41'>" << svg_escape(series[s]) << "</text>\n";
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const double x0 = left + gap / 2 + group_width * g;
    for (std::size_t s = 0; s < series.size() && s < values[g].size(); ++s)
      os << "<rect x='" << x0 + bar * s << "' y='" << y(values[g][s]) << "' width='" << bar - 1
         << "' height='" << top + ph - y(values[g][s]) << "' fill='" << kColors[s % 6]
         << "'><title>" << svg_escape(groups[g]) << ", " << svg_escape(series[s]) << ": "
         << std::setprecision(4) << 100 * values[g][s] << "%</title></rect>\n";
    os << "<text transform='translate(" << x0 + bar * series.size() / 2 + 4 << "," << top + ph + 10
       << ") rotate(45)'>" << svg_escape(groups[g]) << "</text>\n";
  }
  write_svg_file(path, os.str());
}

void write_lines_svg(const std::string& path, const std::vector<std::string>& x,
                     const std::vector<std::string>& lines,
                     const std::vector<std::vector<double>>& values, const std::string& title) {
  static const char* const kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                        "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                        "#bcbd22", "#17becf", "#000000", "#aec7e8"};
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto& line : values)
    for (double v : line)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!std::isfinite(lo)) lo = 0, hi = 1;  // no values
  if (!(lo < hi)) lo -= 1, hi += 1;        // all one value
  const double left = 60, top = 40, pw = 120.0 * std::max<std::size_t>(x.size(), 2), ph = 300;
  const double legend = 150, W = left + pw + legend, H = top + ph + 50;
  const auto px = [&](std::size_t i) { return left + pw * (i + 0.5) / x.size(); };
  const auto py = [&](double v) { return top + ph * (hi - v) / (hi - lo); };
  std::ostringstream os;
  begin_svg(os, W, H, title);
  for (int k = 0; k <= 4; ++k) {
    const double v = lo + (hi - lo) * k / 4.0;
    os << "<line x1='" << left << "' x2='" << left + pw << "' y1='" << py(v) << "' y2='" << py(v)
       << "' stroke='#eee'/>\n"
       << "<text x='" << left - 6 << "' y='" << py(v) + 4 << "' text-anchor='end'>"
       << std::setprecision(4) << v << std::setprecision(6) << "</text>\n";
  }
  for (std::size_t i = 0; i < x.size(); ++i)
    os << "<text x='" << px(i) << "' y='" << top + ph + 20 << "' text-anchor='middle'>"
       << svg_escape(x[i]) << "</text>\n";
  for (std::size_t l = 0; l < lines.size() && l < values.size(); ++l) {
    const char* colour = kColors[l % 12];
    std::string points;
    for (std::size_t i = 0; i < x.size() && i < values[l].size(); ++i) {
      if (!std::isfinite(values[l][i])) continue;
      points += std::to_string(px(i)) + "," + std::to_string(py(values[l][i])) + " ";
      os << "<circle cx='" << px(i) << "' cy='" << py(values[l][i]) << "' r='3' fill='" << colour
         << "'><title>" << svg_escape(lines[l]) << " at " << svg_escape(x[i]) << ": "
         << std::setprecision(4) << values[l][i] << std::setprecision(6) << "</title></circle>\n";
    }
    os << "<polyline fill='none' stroke='" << colour << "' stroke-width='1.5' points='" << points
       << "'/>\n"
       << "<rect x='" << left + pw + 20 << "' y='" << top + 18 * l << "' width='10' height='10' "
       << "fill='" << colour << "'/><text x='" << left + pw + 36 << "' y='" << top + 18 * l + 9
       << "'>" << svg_escape(lines[l]) << "</text>\n";
  }
  write_svg_file(path, os.str());
}

void write_heatmap_svg(const std::string& path, const std::vector<std::string>& rows,
                       const std::vector<std::string>& cols,
                       const std::vector<std::vector<double>>& weights, const std::string& title) {
  const double cell = 28, left = 120, top = 120;
  const double W =
      std::max(left + cell * cols.size() + 20, 20 + 8.0 * title.size());  // room for the title
  const double H = top + cell * rows.size() + 20;
  std::ostringstream os;
  begin_svg(os, W, H, title);
  for (std::size_t j = 0; j < cols.size(); ++j)
    os << "<text transform='translate(" << left + cell * j + cell / 2 + 4 << "," << top - 6
       << ") rotate(-60)'>" << svg_escape(cols[j]) << "</text>\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    // Shade relative to the row's largest weight, so that spread-out rows stay visible.
    const double row_max = std::max(1e-12, *std::max_element(weights[i].begin(), weights[i].end()));
    os << "<text x='" << left - 6 << "' y='" << top + cell * i + cell / 2 + 4
       << "' text-anchor='end'>" << svg_escape(rows[i]) << "</text>\n";
    for (std::size_t j = 0; j < cols.size(); ++j)
      os << "<rect x='" << left + cell * j << "' y='" << top + cell * i << "' width='" << cell
         << "' height='" << cell << "' fill='#08306b' fill-opacity='"
         << std::clamp(weights[i][j] / row_max, 0.0, 1.0) << "' stroke='#eee'><title>"
         << svg_escape(rows[i]) << " -> " << svg_escape(cols[j]) << ": " << weights[i][j]
         << "</title></rect>\n";
  }
  os << "</svg>\n";
  write_svg_file(path, os.str());
}

void write_attention_svg(const std::string& path, const std::vector<Tensor>& layers,
                         const std::vector<std::string>& words, std::size_t layer) {
  if (layer >= layers.size())
    throw std::runtime_error("attention layer " + std::to_string(layer) + ": the model has " +
                             std::to_string(layers.size()) + " layers (0 to " +
                             std::to_string(layers.size() - 1) + ")");
  const Tensor& weights = layers[layer];
  const std::size_t H = weights.shape()[1], T = weights.shape()[2];
  std::vector<std::vector<double>> avg(T, std::vector<double>(T, 0.0));
  const auto& w = weights.data<float>();
  for (std::size_t h = 0; h < H; ++h)
    for (std::size_t i = 0; i < T; ++i)
      for (std::size_t j = 0; j < T; ++j) avg[i][j] += w(0, h, i, j) / H;
  write_heatmap_svg(
      path, words, words, avg,
      "self-attention, layer " + std::to_string(layer) +
          ", mean over heads; rows attend to columns, each row shaded to its maximum");
}

}  // namespace tg::models
