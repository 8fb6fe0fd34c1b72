#include "plots.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <stdexcept>

namespace tg::models {

namespace {

void write_text_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw std::runtime_error(path + ": cannot write the picture: " + std::strerror(errno));
}

std::string escape(const std::string& s) {
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

}  // namespace

void write_curve_svg(const std::string& path, const std::vector<EpochRecord>& history, const std::string& metric_name,
                     bool percent) {
  const double W = 640, H = 360, left = 60, right = 60, top = 40, bottom = 50;
  const double pw = W - left - right, ph = H - top - bottom;
  double max_loss = 1e-9, min_metric = 1, max_metric = 0;
  for (const auto& r : history) {
    max_loss = std::max(max_loss, r.train_loss);
    min_metric = std::min(min_metric, r.dev_metric);
    max_metric = std::max(max_metric, r.dev_metric);
  }
  if (max_metric - min_metric < 0.01) min_metric = std::max(0.0, max_metric - 0.01);
  const std::size_t n = std::max<std::size_t>(history.size(), 2);
  const auto x = [&](std::size_t i) { return left + pw * i / (n - 1); };
  const auto y_loss = [&](double v) { return top + ph * (1 - v / max_loss); };
  const auto y_metric = [&](double v) { return top + ph * (1 - (v - min_metric) / (max_metric - min_metric)); };
  std::ostringstream os;
  os << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H << "' font-family='sans-serif' font-size='12'>\n"
     << "<rect width='100%' height='100%' fill='white'/>\n"
     << "<text x='" << W / 2 << "' y='22' text-anchor='middle' font-size='15'>training loss and dev " << escape(metric_name) << " per epoch</text>\n"
     << "<rect x='" << left << "' y='" << top << "' width='" << pw << "' height='" << ph << "' fill='none' stroke='#999'/>\n";
  for (int k = 0; k <= 4; ++k) {
    const double f = k / 4.0;
    os << "<text x='" << left - 6 << "' y='" << top + ph * (1 - f) + 4 << "' text-anchor='end' fill='#1f77b4'>" << std::setprecision(3) << max_loss * f << "</text>\n"
       << "<text x='" << W - right + 6 << "' y='" << top + ph * (1 - f) + 4 << "' fill='#d62728'>" << std::setprecision(4) << 100 * (min_metric + (max_metric - min_metric) * f) << (percent ? "%" : "") << "</text>\n";
  }
  for (std::size_t i = 0; i < history.size(); ++i)
    os << "<text x='" << x(i) << "' y='" << H - bottom + 16 << "' text-anchor='middle'>" << history[i].epoch << "</text>\n";
  os << "<text x='" << W / 2 << "' y='" << H - 12 << "' text-anchor='middle'>epoch</text>\n";
  const auto line = [&](auto y, auto value, const char* color) {
    os << "<polyline fill='none' stroke='" << color << "' stroke-width='2' points='";
    for (std::size_t i = 0; i < history.size(); ++i) os << x(i) << "," << y(value(history[i])) << " ";
    os << "'/>\n";
    for (std::size_t i = 0; i < history.size(); ++i)
      os << "<circle cx='" << x(i) << "' cy='" << y(value(history[i])) << "' r='3' fill='" << color << "'/>\n";
  };
  line(y_loss, [](const EpochRecord& r) { return r.train_loss; }, "#1f77b4");
  line(y_metric, [](const EpochRecord& r) { return r.dev_metric; }, "#d62728");
  os << "<text x='" << left + 8 << "' y='" << top + 16 << "' fill='#1f77b4'>train loss (left)</text>\n"
     << "<text x='" << left + 8 << "' y='" << top + 32 << "' fill='#d62728'>dev " << escape(metric_name) << " (right)</text>\n</svg>\n";
  write_text_file(path, os.str());
}

void write_bars_svg(const std::string& path, const std::vector<std::string>& groups,
                    const std::vector<std::string>& series, const std::vector<std::vector<double>>& values,
                    const std::string& title, double floor) {
  static const char* const kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"};
  const double bar = 12, gap = 14, left = 60, top = 60, ph = 260, bottom = 70;
  const double group_width = bar * series.size() + gap;
  const double W = std::max(left + group_width * groups.size() + 20, 20 + 8.0 * title.size());
  const double H = top + ph + bottom;
  const auto y = [&](double v) { return top + ph * (1 - std::clamp((v - floor) / (1 - floor), 0.0, 1.0)); };
  std::ostringstream os;
  os << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H << "' font-family='sans-serif' font-size='12'>\n"
     << "<rect width='100%' height='100%' fill='white'/>\n"
     << "<text x='10' y='20' font-size='14'>" << escape(title) << "</text>\n";
  for (int k = 0; k <= 4; ++k) {
    const double v = floor + (1 - floor) * k / 4.0;
    os << "<line x1='" << left << "' x2='" << W - 10 << "' y1='" << y(v) << "' y2='" << y(v) << "' stroke='#eee'/>\n"
       << "<text x='" << left - 6 << "' y='" << y(v) + 4 << "' text-anchor='end'>" << std::setprecision(3) << 100 * v << "%</text>\n";
  }
  for (std::size_t s = 0; s < series.size(); ++s)
    os << "<rect x='" << left + 110 * s << "' y='32' width='10' height='10' fill='" << kColors[s % 6] << "'/>"
       << "<text x='" << left + 110 * s + 14 << "' y='41'>" << escape(series[s]) << "</text>\n";
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const double x0 = left + gap / 2 + group_width * g;
    for (std::size_t s = 0; s < series.size() && s < values[g].size(); ++s)
      os << "<rect x='" << x0 + bar * s << "' y='" << y(values[g][s]) << "' width='" << bar - 1 << "' height='"
         << top + ph - y(values[g][s]) << "' fill='" << kColors[s % 6] << "'><title>" << escape(groups[g]) << ", "
         << escape(series[s]) << ": " << std::setprecision(4) << 100 * values[g][s] << "%</title></rect>\n";
    os << "<text transform='translate(" << x0 + bar * series.size() / 2 + 4 << "," << top + ph + 10
       << ") rotate(45)'>" << escape(groups[g]) << "</text>\n";
  }
  write_text_file(path, os.str());
}

void write_heatmap_svg(const std::string& path, const std::vector<std::string>& rows, const std::vector<std::string>& cols,
                       const std::vector<std::vector<double>>& weights, const std::string& title) {
  const double cell = 28, left = 120, top = 120;
  const double W = std::max(left + cell * cols.size() + 20, 20 + 8.0 * title.size());  // room for the title
  const double H = top + cell * rows.size() + 20;
  std::ostringstream os;
  os << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H << "' font-family='sans-serif' font-size='12'>\n"
     << "<rect width='100%' height='100%' fill='white'/>\n"
     << "<text x='10' y='20' font-size='14'>" << escape(title) << "</text>\n";
  for (std::size_t j = 0; j < cols.size(); ++j)
    os << "<text transform='translate(" << left + cell * j + cell / 2 + 4 << "," << top - 6 << ") rotate(-60)'>" << escape(cols[j]) << "</text>\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    // Shade relative to the row's largest weight, so that spread-out rows stay visible.
    const double row_max = std::max(1e-12, *std::max_element(weights[i].begin(), weights[i].end()));
    os << "<text x='" << left - 6 << "' y='" << top + cell * i + cell / 2 + 4 << "' text-anchor='end'>" << escape(rows[i]) << "</text>\n";
    for (std::size_t j = 0; j < cols.size(); ++j)
      os << "<rect x='" << left + cell * j << "' y='" << top + cell * i << "' width='" << cell << "' height='" << cell
         << "' fill='#08306b' fill-opacity='" << std::clamp(weights[i][j] / row_max, 0.0, 1.0) << "' stroke='#eee'><title>"
         << escape(rows[i]) << " -> " << escape(cols[j]) << ": " << weights[i][j] << "</title></rect>\n";
  }
  os << "</svg>\n";
  write_text_file(path, os.str());
}

void write_attention_svg(const std::string& path, const std::vector<Tensor>& layers,
                         const std::vector<std::string>& words, std::size_t layer) {
  if (layer >= layers.size())
    throw std::runtime_error("attention layer " + std::to_string(layer) + ": the model has " + std::to_string(layers.size()) +
                             " layers (0 to " + std::to_string(layers.size() - 1) + ")");
  const Tensor& weights = layers[layer];
  const std::size_t H = weights.shape()[1], T = weights.shape()[2];
  std::vector<std::vector<double>> avg(T, std::vector<double>(T, 0.0));
  const auto& w = weights.data<float>();
  for (std::size_t h = 0; h < H; ++h)
    for (std::size_t i = 0; i < T; ++i)
      for (std::size_t j = 0; j < T; ++j) avg[i][j] += w(0, h, i, j) / H;
  write_heatmap_svg(path, words, words, avg,
                    "self-attention, layer " + std::to_string(layer) +
                        ", mean over heads; rows attend to columns, each row shaded to its maximum");
}

}  // namespace tg::models
