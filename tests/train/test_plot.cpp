// The SVG line-plot writer: well-formed output, log axes, markers and legend, escaping, skipped
// non-finite points, y limits, and atomic writes.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "cyclone/core/error.h"
#include "cyclone/core/file_util.h"
#include "cyclone/train/plot.h"

namespace cyclone::train {
namespace {

namespace fs = std::filesystem;
using ::cyclone::testing::expect_error;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("cyclone_plot_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Every element opened is closed in order, attribute values are quoted, and no bare '&' or '<'
// appears in text: the subset of XML well-formedness a hand-written writer can get wrong.
::testing::AssertionResult well_formed(const std::string& svg) {
  std::vector<std::string> stack;
  size_t i = 0;
  int roots = 0;
  while (i < svg.size()) {
    if (svg[i] == '&') {
      const size_t semi = svg.find(';', i);
      const std::string ent = svg.substr(i, semi == std::string::npos ? 8 : semi - i + 1);
      if (ent != "&amp;" && ent != "&lt;" && ent != "&gt;" && ent != "&quot;" && ent != "&apos;")
        return ::testing::AssertionFailure() << "bad entity at " << i << ": " << ent;
      ++i;
      continue;
    }
    if (svg[i] == '>') return ::testing::AssertionFailure() << "bare '>' at " << i;
    if (svg[i] != '<') {
      ++i;
      continue;
    }
    if (svg.compare(i, 2, "<?") == 0) {
      const size_t end = svg.find("?>", i);
      if (end == std::string::npos) return ::testing::AssertionFailure() << "unclosed <?";
      i = end + 2;
      continue;
    }
    // Scan to the tag's '>' outside quoted attribute values; no '<' may appear in them.
    size_t j = i + 1;
    char quote = 0;
    for (; j < svg.size(); ++j) {
      if (quote) {
        if (svg[j] == quote) quote = 0;
        if (svg[j] == '<') return ::testing::AssertionFailure() << "'<' in attribute at " << j;
      } else if (svg[j] == '"' || svg[j] == '\'') {
        quote = svg[j];
      } else if (svg[j] == '>') {
        break;
      }
    }
    if (j == svg.size()) return ::testing::AssertionFailure() << "unterminated tag at " << i;
    std::string tag = svg.substr(i + 1, j - i - 1);
    i = j + 1;
    if (tag.empty()) return ::testing::AssertionFailure() << "empty tag";
    if (tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (stack.empty() || stack.back() != name)
        return ::testing::AssertionFailure()
               << "</" << name << "> closes " << (stack.empty() ? "nothing" : stack.back());
      stack.pop_back();
      continue;
    }
    const bool self_closing = tag.back() == '/';
    const std::string name = tag.substr(0, tag.find_first_of(" \t\n/"));
    if (stack.empty()) ++roots;
    if (!self_closing) stack.push_back(name);
  }
  if (!stack.empty()) return ::testing::AssertionFailure() << "<" << stack.back() << "> unclosed";
  if (roots != 1) return ::testing::AssertionFailure() << roots << " root elements";
  return ::testing::AssertionSuccess();
}

// Every "points" attribute's coordinates, and every number in x/y attributes, parsed.
std::vector<std::pair<double, double>> polyline_points(const std::string& svg) {
  std::vector<std::pair<double, double>> pts;
  const std::string key = "points=\"";
  for (size_t at = svg.find(key); at != std::string::npos; at = svg.find(key, at + 1)) {
    const size_t end = svg.find('"', at + key.size());
    std::string list = svg.substr(at + key.size(), end - at - key.size());
    std::replace(list.begin(), list.end(), ',', ' ');
    std::istringstream in(list);
    double x, y;
    while (in >> x >> y) pts.push_back({x, y});
  }
  return pts;
}

double attr(const std::string& svg, const std::string& element_start, const std::string& name) {
  const size_t at = svg.find(element_start);
  EXPECT_NE(at, std::string::npos) << element_start;
  const size_t v = svg.find(" " + name + "=\"", at);
  return std::stod(svg.substr(v + name.size() + 3));
}

size_t count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + 1)) ++n;
  return n;
}

// A synthetic LR range test: lr from 1e-5 to 10, loss falling then exploding.
Plot range_test_plot() {
  Plot p;
  p.title = "LR range test";
  p.x_label = "learning rate";
  p.left_label = "loss";
  p.x_log = true;
  for (int i = 0; i <= 100; ++i) {
    const double lr = 1e-5 * std::pow(10.0, 6.0 * i / 100);
    p.x.push_back(lr);
  }
  PlotSeries raw{.label = "raw loss", .color = "#1f77b4", .opacity = 0.3, .width = 1};
  PlotSeries smooth{.label = "smoothed loss", .color = "#1f77b4", .width = 2};
  for (double lr : p.x) {
    const double l = std::log10(lr);
    const double v =
        2.3 - 1.5 / (1 + std::exp(-(l + 3) * 2)) + (l > -0.5 ? std::exp(4 * (l + 0.5)) : 0);
    smooth.y.push_back(v);
    raw.y.push_back(v * (1 + 0.1 * std::sin(37 * l)));
  }
  p.series = {raw, smooth};
  p.markers = {{1e-1, "min_loss_lr", ""}, {3e-3, "steepest_lr", ""}, {1e-2, "valley_lr", ""}};
  p.y_max = 3 * 2.3;
  return p;
}

TEST(PlotTest, WellFormedSvg) {
  // The checker itself rejects what it is meant to catch.
  EXPECT_FALSE(well_formed("<svg><g></svg>"));
  EXPECT_FALSE(well_formed("<svg><text>a < b</text></svg>"));
  EXPECT_FALSE(well_formed("<svg><text>a & b</text></svg>"));
  EXPECT_FALSE(well_formed("<svg/><svg/>"));
  const std::string svg = render_svg(range_test_plot());
  EXPECT_TRUE(well_formed(svg));
  EXPECT_EQ(svg.rfind("</svg>\n"), svg.size() - 7);
  if (std::system("command -v python3 >/dev/null 2>&1") != 0) return;  // the parser is optional
  TempDir dir;
  const std::string path = dir.file("p.svg");
  write_file_atomic(path, svg);
  const std::string cmd =
      "python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' '" + path + "'";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << "xml.etree cannot parse the SVG";
}

TEST(PlotTest, LinearTwoAxesKeepsLrScheduleShape) {
  Plot p;
  p.title = "one_cycle policy";
  p.x_label = "step";
  p.left_label = "learning rate";
  p.right_label = "momentum";
  p.x = {0, 1, 2, 3, 4};
  p.series.push_back({"lr", {0.1, 0.5, 1, 0.5, 0.1}, "#1f77b4", false});
  p.series.push_back({"momentum", {0.95, 0.9, 0.85, 0.9, 0.95}, "#d62728", true});
  const std::string svg = render_svg(p);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_EQ(count(svg, "<polyline"), 2u);
  EXPECT_NE(svg.find(">momentum</text>"), std::string::npos);  // right axis label
  EXPECT_NE(svg.find(">0.9</text>"), std::string::npos);       // right axis tick
  EXPECT_NE(svg.find(">0.4</text>"), std::string::npos);       // left axis tick
}

TEST(PlotTest, ConstantSeriesStillGetsAnAxis) {
  Plot p;
  p.x = {0, 1, 2};
  p.series.push_back({"lr", {0.1, 0.1, 0.1}});
  const std::string svg = render_svg(p);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_EQ(count(svg, "<polyline"), 1u);
  EXPECT_NE(svg.find(">0.1</text>"), std::string::npos);
}

TEST(PlotTest, LogAxisDecadeLabels) {
  Plot p;
  p.x_log = true;
  for (int k = -5; k <= 1; ++k) p.x.push_back(std::pow(10.0, k));
  p.x.insert(p.x.begin(), {0.0, -1.0});  // skipped on a log axis
  PlotSeries s{.label = "loss"};
  for (size_t i = 0; i < p.x.size(); ++i) s.y.push_back(1.0 + static_cast<double>(i));
  p.series = {s};
  const std::string svg = render_svg(p);
  EXPECT_TRUE(well_formed(svg));
  for (const char* label : {">1e-5<", ">1e-4<", ">1e-3<", ">1e-2<", ">1e-1<", ">1e0<", ">1e1<"})
    EXPECT_NE(svg.find(label), std::string::npos) << label;
  // Minor ticks: 8 per decade over 6 decades, drawn lighter than the decade lines.
  EXPECT_GE(count(svg, "stroke=\"#f0f0f0\""), 6u * 8u);
  // The line starts at 1e-5 on the frame's left edge: x <= 0 never stretched the axis.
  const auto pts = polyline_points(svg);
  ASSERT_FALSE(pts.empty());
  EXPECT_NEAR(pts.front().first, attr(svg, "<rect class=\"frame\"", "x"), 1e-6);

  // Under two decades: the 2x and 5x ticks are labelled too, in the same exponent style.
  p.x = {1.5e-5, 8e-5};
  p.series = {{.label = "loss", .y = {1, 2}}};
  const std::string narrow = render_svg(p);
  for (const char* label : {">2e-5<", ">5e-5<"})
    EXPECT_NE(narrow.find(label), std::string::npos) << label;
  EXPECT_EQ(narrow.find("e-05"), std::string::npos);
}

TEST(PlotTest, LogYAxisSkipsNonPositive) {
  Plot p;
  p.y_log = true;
  p.x = {1, 2, 3, 4};
  p.series.push_back({"loss", {1e-3, 0.0, 1e-1, 10}});
  const std::string svg = render_svg(p);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_EQ(count(svg, "<polyline"), 1u);  // 1e-3 stands alone after the break, not drawn
  EXPECT_NE(svg.find(">1e-1<"), std::string::npos);
  EXPECT_NE(svg.find(">1e1<"), std::string::npos);
  expect_error(
      [&] {
        p.y_min = 0.0;
        render_svg(p);
      },
      {"positive"});
}

TEST(PlotTest, MarkersAndLegendEscaped) {
  Plot p = range_test_plot();
  p.title = "range <test> & 'more'";
  p.series[1].label = "smoothed <\"loss\"> & co";
  p.markers.push_back({2e-2, "valley <lr> & \"x\"", "#123456"});
  const std::string svg = render_svg(p);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_EQ(svg.find("<test>"), std::string::npos);
  EXPECT_EQ(svg.find("<lr>"), std::string::npos);
  EXPECT_NE(svg.find("range &lt;test&gt; &amp; &apos;more&apos;"), std::string::npos);
  EXPECT_EQ(count(svg, "smoothed &lt;&quot;loss&quot;&gt; &amp; co"), 1u);  // in the legend
  // A marker's label sits above its line and again in the legend.
  EXPECT_EQ(count(svg, ">valley &lt;lr&gt; &amp; &quot;x&quot;</text>"), 2u);
  for (const char* name : {">min_loss_lr<", ">steepest_lr<", ">valley_lr<"})
    EXPECT_EQ(count(svg, name), 2u) << name;
  EXPECT_EQ(count(svg, "class=\"marker\""), 4u);
  EXPECT_NE(svg.find("stroke=\"#123456\""), std::string::npos);
  EXPECT_NE(svg.find("<g class=\"legend\">"), std::string::npos);
  EXPECT_EQ(count(svg, ">raw loss</text>"), 1u);
}

TEST(PlotTest, CloseMarkerLabelsStackInRows) {
  Plot p;
  p.x_log = true;
  p.x = {1e-4, 1};
  p.series.push_back({"loss", {1, 2}});
  p.markers = {{1e-2, "steepest_lr", ""}, {1.1e-2, "valley_lr", ""}, {1.2e-2, "min_loss_lr", ""}};
  const std::string svg = render_svg(p);
  EXPECT_TRUE(well_formed(svg));
  std::vector<double> ys;
  const std::string key = "<text class=\"marker-label\"";
  for (size_t at = svg.find(key); at != std::string::npos; at = svg.find(key, at + 1))
    ys.push_back(std::stod(svg.substr(svg.find(" y=\"", at) + 4)));
  ASSERT_EQ(ys.size(), 3u);
  std::sort(ys.begin(), ys.end());
  EXPECT_LT(ys[0], ys[1]);
  EXPECT_LT(ys[1], ys[2]);
  EXPECT_LT(ys[2], attr(svg, "<rect class=\"frame\"", "y"));  // all above the frame
}

TEST(PlotTest, NonFinitePointsSkipped) {
  Plot p;
  p.x = {0, 1, 2, 3, kNaN, 5, 6, 7, 8};
  p.series.push_back({"loss", {1, 2, kNaN, 3, 4, 5, kInf, 6, 7}});
  p.series.push_back({"other", {-kInf, kNaN, kNaN, kNaN, kNaN, kNaN, kNaN, kNaN, kNaN}});
  p.markers.push_back({kNaN, "nowhere", ""});
  const std::string svg = render_svg(p);
  EXPECT_TRUE(well_formed(svg));
  std::string lower = svg;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  EXPECT_EQ(lower.find("nan"), std::string::npos);
  EXPECT_EQ(lower.find("inf"), std::string::npos);
  EXPECT_EQ(count(svg, "<polyline"), 2u);  // 0-1, 7-8; 3 and 5 stand alone
  EXPECT_EQ(svg.find("nowhere"), std::string::npos);
  // The automatic y range ignored the infinities: 1..7 gives ticks 1..7, not 1e308.
  EXPECT_NE(svg.find(">7</text>"), std::string::npos);
}

TEST(PlotTest, YLimitsClipToTheFrame) {
  Plot p = range_test_plot();
  p.y_min = 1.0;
  const std::string svg = render_svg(p);
  EXPECT_TRUE(well_formed(svg));
  const double top = attr(svg, "<rect class=\"frame\"", "y");
  const double bottom = top + attr(svg, "<rect class=\"frame\"", "height");
  const auto pts = polyline_points(svg);
  ASSERT_FALSE(pts.empty());
  double highest = bottom;
  for (const auto& [x, y] : pts) {
    EXPECT_GE(y, top - 1e-6);
    EXPECT_LE(y, bottom + 1e-6);
    highest = std::min(highest, y);
  }
  EXPECT_NEAR(highest, top, 1e-6);  // the exploding loss runs to the frame's top edge and stops
  EXPECT_NE(svg.find(">6</text>"), std::string::npos);  // ticks up to y_max = 6.9, no further
  EXPECT_EQ(svg.find(">8</text>"), std::string::npos);
  expect_error(
      [&] {
        p.y_max = 0.5;
        render_svg(p);
      },
      {"y_min", "y_max"});
}

TEST(PlotTest, SeriesOwnXAndStyle) {
  Plot p;
  p.x_log = true;
  p.series.push_back({.label = "momentum 0.9", .y = {3, 2, 1}, .x = {1e-4, 1e-3, 1e-2}});
  p.series.push_back({.label = "momentum 0.99",
                      .y = {3, 2.5, 2, 1.5, 1},
                      .color = "#ff7f0e",
                      .x = {1e-4, 1e-3, 1e-2, 1e-1, 1},
                      .opacity = 0.4,
                      .width = 2,
                      .dashed = true});
  const std::string svg = render_svg(p);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_EQ(count(svg, "<polyline"), 2u);
  EXPECT_NE(svg.find("stroke-opacity=\"0.4\""), std::string::npos);
  EXPECT_NE(svg.find("stroke-dasharray=\"8,6\""), std::string::npos);
  EXPECT_NE(svg.find(">1e0<"), std::string::npos);  // the longer curve sets the x range
  p.series[0].x.pop_back();
  expect_error([&] { render_svg(p); }, {"momentum 0.9", "3 values", "2 x values"});
}

// A plot named into a folder of its own (microDL's fig_fname: plots/lr.svg) failed after the
// range test had run: the folder is made; a file where it would be is named.
TEST(PlotTest, WriteMakesTheFolderOrNamesWhatIsInTheWay) {
  TempDir dir;
  const std::string path = dir.file("plots/range/plot.svg");
  write_svg(range_test_plot(), path);
  EXPECT_EQ(read_file(path), render_svg(range_test_plot()));
  std::ofstream(dir.file("file")) << "x";
  const std::string blocked = dir.file("file/plot.svg");
  expect_error([&] { write_svg(range_test_plot(), blocked); }, {dir.file("file")});
}

TEST(PlotTest, WriteIsAtomic) {
  TempDir dir;
  const std::string path = dir.file("plot.svg");
  const Plot p = range_test_plot();
  write_svg(p, path);
  EXPECT_EQ(read_file(path), render_svg(p));
  // A plot that fails to render leaves the previous file whole and no temporary behind.
  Plot bad = p;
  bad.series[0].y.pop_back();
  EXPECT_THROW(write_svg(bad, path), Error);
  EXPECT_EQ(read_file(path), render_svg(p));
  Plot other = p;
  other.title = "second";
  write_svg(other, path);
  EXPECT_EQ(read_file(path), render_svg(other));
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    ++files;
    EXPECT_EQ(e.path().filename(), "plot.svg");
  }
  EXPECT_EQ(files, 1u);
}

}  // namespace
}  // namespace cyclone::train
