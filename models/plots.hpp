// Pictures as SVG files (they open in any browser): attention and confusion matrices as heatmaps,
// bar charts.  (The training curve is the loop's: nn/training/curve.hpp.)  Each throws naming the
// file when it cannot be written.
#pragma once

#include <string>
#include <vector>

#include "../autograd/tensor.hpp"

namespace tg::models {

// weights: rows x cols, each row shaded relative to its largest value; labels along both sides.
void write_heatmap_svg(const std::string& path, const std::vector<std::string>& rows,
                       const std::vector<std::string>& cols,
                       const std::vector<std::vector<double>>& weights, const std::string& title);

// Grouped bars: for each group (a row of the table: a model), one bar per series (a column),
// values[group][series] in [0, 1] drawn as percentages from `floor` up; a legend names the series.
void write_bars_svg(const std::string& path, const std::vector<std::string>& groups,
                    const std::vector<std::string>& series,
                    const std::vector<std::vector<double>>& values, const std::string& title,
                    double floor = 0);

// Lines over a few x positions (labels, evenly spaced): values[line][x], one colour a line, NaN
// for no point; the y axis spans the values; a legend names the lines.
void write_lines_svg(const std::string& path, const std::vector<std::string>& x,
                     const std::vector<std::string>& lines,
                     const std::vector<std::vector<double>>& values, const std::string& title);

// Self-attention of a single sentence: layer `layer` of `weights` (one (1, H, T, T) tensor per
// layer), averaged over heads.  Throws if there is no such layer.
void write_attention_svg(const std::string& path, const std::vector<Tensor>& weights,
                         const std::vector<std::string>& words, std::size_t layer);

}  // namespace tg::models
