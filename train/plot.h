// A small line-plot writer: y series against x on one or two y axes, linear or logarithmic, with
// vertical markers and a legend, written as a standalone SVG (DESIGN.md: plots as SVG). Used by
// lr_schedule's --plot and by the LR range test (loss against a log-spaced learning rate, the raw
// loss faint behind the smoothed one, the suggested rates as markers).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace cyclone::train {

// Every member has an initializer, so designated initialization ({.label = "loss", .y = v}) may
// leave any of them out without -Wmissing-field-initializers.
struct PlotSeries {
  std::string label{};  // empty: drawn, but not listed in the legend
  std::vector<double> y{};
  std::string color = "#1f77b4";
  bool right_axis = false;  // plotted against the right-hand axis (always linear, automatic)
  // This series' own x, same length as y; empty: the plot's x. Curves of different lengths (one
  // range test per momentum or weight decay) overlay in one plot this way.
  std::vector<double> x{};
  double opacity = 1;
  double width = 1.5;  // stroke width in pixels
  bool dashed = false;
};

// A vertical line across the frame at x, its label centred above the frame (labels that would
// overlap are stacked in rows) and listed in the legend. The x range always includes the markers;
// one at a non-finite x (or x <= 0 on a log axis) is skipped.
struct Marker {
  double x = 0;
  std::string label{};
  std::string color{};  // empty: a colour from a fixed palette, by the marker's index
};

struct Plot {
  std::string title = {};
  std::string x_label = {};
  std::string left_label = {};
  std::string right_label = {};  // shown when some series uses the right axis
  std::vector<double> x = {};    // the x of every series that has none of its own
  std::vector<PlotSeries> series = {};
  std::vector<Marker> markers = {};
  // Logarithmic axes: decade ticks labelled 1e-4, 1e-3, ... and minor ticks at 2..9 times a
  // decade; points with x <= 0 (or y <= 0) are skipped. y_log applies to the left axis.
  bool x_log = false;
  bool y_log = false;
  // Fixed limits of the left axis (the other end stays automatic). Lines leaving them are cut at
  // the frame, so a range test's exploding loss (clipped at, say, 3x the initial loss) does not
  // squash the interesting part. Automatic ends ignore non-finite values and values outside a
  // fixed limit.
  std::optional<double> y_min = {};
  std::optional<double> y_max = {};
};

// Renders `plot` as SVG text. Points with a non-finite coordinate (or a non-positive one on a log
// axis) are skipped and the line breaks there; every number written is finite. Text is escaped
// for XML. Throws cyclone::Error for a series whose y and x differ in length, or for limits that
// are not finite, not increasing, or not positive on a log axis.
std::string render_svg(const Plot& plot);

// Writes render_svg(plot) to `path` atomically (a temporary file renamed over it; its folder made
// when missing), so a failed run never leaves a half-written plot. Throws cyclone::Error naming
// the path on failure.
void write_svg(const Plot& plot, const std::string& path);

}  // namespace cyclone::train
