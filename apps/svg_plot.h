// A small line-plot writer for the apps' --plot flags: y series against x, one or two y axes,
// written as a standalone SVG (DESIGN.md: plots as SVG). It lives in apps/ until train/ exists;
// the trainer's loss and range-test plots should move it there rather than grow a second one.
#pragma once

#include <string>
#include <vector>

namespace cyclone::apps {

struct PlotSeries {
  std::string label;
  std::vector<double> y;  // same length as the plot's x
  std::string color = "#1f77b4";
  bool right_axis = false;  // plotted against the right-hand axis
};

struct Plot {
  std::string title;
  std::string x_label;
  std::string left_label;
  std::string right_label;  // shown when some series uses the right axis
  std::vector<double> x;
  std::vector<PlotSeries> series;
};

// Renders `plot` as SVG text. Non-finite values are skipped (the line breaks there).
std::string render_svg(const Plot& plot);

// Writes render_svg(plot) to `path` through a temporary file and a rename, so a failed run never
// leaves a half-written plot. Throws cyclone::Error naming the path on failure.
void write_svg(const Plot& plot, const std::string& path);

}  // namespace cyclone::apps
