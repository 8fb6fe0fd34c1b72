// The training curve as an SVG picture (it opens in any browser), and the two helpers every
// picture of tapegrad's uses (models/plots.hpp draws the others).
#pragma once

#include <string>
#include <vector>

#include "loop.hpp"

namespace tg::nn {

// Training loss (left axis) and dev metric (right axis) per epoch.
void write_curve_svg(const std::string& path, const std::vector<EpochRecord>& history,
                     const std::string& metric_name, bool percent = true);

// `text` into the file at `path`; throws naming the file when it cannot be written.
void write_svg_file(const std::string& path, const std::string& text);
// s with <, >, & and " escaped, for text inside an SVG element or attribute.
std::string svg_escape(const std::string& s);

}  // namespace tg::nn
