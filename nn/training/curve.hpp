// The training curve as an SVG picture (it opens in any browser), and the two helpers every
// picture of tapegrad's uses (models/plots.hpp draws the others).
#pragma once

#include <string>
#include <vector>

namespace tg::nn {

// One epoch of training, as the loop (loop.hpp) records it and the curve draws it.
struct EpochRecord {
  std::size_t epoch = 0;
  double train_loss = 0, dev_metric = 0, seconds = 0;
};

// How the dev metric is shown: `scale` times its value (100: a share as a percentage, or BLEU;
// 1: a loss), with a % sign or not.
struct MetricAxis {
  bool percent = true;
  double scale = 100;
};

// Training loss (left axis) and dev metric (right axis) per epoch.
void write_curve_svg(const std::string& path, const std::vector<EpochRecord>& history,
                     const std::string& metric_name, const MetricAxis& axis = {});

// `text` into the file at `path`; throws naming the file when it cannot be written.
void write_svg_file(const std::string& path, const std::string& text);
// s with <, >, & and " escaped, for text inside an SVG element or attribute.
std::string svg_escape(const std::string& s);

}  // namespace tg::nn
