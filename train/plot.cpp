#include "cyclone/train/plot.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <locale>
#include <numeric>
#include <sstream>

#include "cyclone/core/error.h"
#include "cyclone/core/file_util.h"

namespace cyclone::train {

namespace {

constexpr double kWidth = 800, kHeight = 480;
constexpr double kLeft = 80, kBottom = 60, kTopBase = 40;
constexpr double kRow = 14;       // height of one row of marker labels above the frame
constexpr int kMaxRows = 4;       // rows of marker labels before they are allowed to overlap
constexpr double kCharWidth = 7;  // a generous average glyph width at font-size 12, sans-serif
constexpr double kMaxFrac = 1e6;  // coordinates are clamped to a million frame sizes
constexpr int kTicks = 5;
constexpr std::array<const char*, 6> kMarkerPalette = {"#2ca02c", "#9467bd", "#ff7f0e",
                                                       "#8c564b", "#e377c2", "#17becf"};

bool usable(double v, bool log) { return std::isfinite(v) && (!log || v > 0); }

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return !(lo <= hi); }
};

struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  // Where v sits across the axis, 0 at lo and 1 at hi; NaN when it cannot be placed. The halves
  // keep hi - lo finite for any finite ends.
  double frac(double v) const {
    const double f = log ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo))
                         : (v * 0.5 - lo * 0.5) / (hi * 0.5 - lo * 0.5);
    return std::isfinite(f) ? std::clamp(f, -kMaxFrac, kMaxFrac) : std::nan("");
  }
};

bool flat(double lo, double hi) { return hi - lo <= 1e-9 * std::max(std::fabs(lo), std::fabs(hi)); }

// An axis over the values seen, or the fixed ends where given. A flat or empty range still gets
// a visible axis: a constant rate is a line in the middle, not a division by zero.
Axis make_axis(const Range& r, bool log, std::optional<double> fix_lo,
               std::optional<double> fix_hi) {
  Axis a{log ? 1.0 : 0.0, log ? 10.0 : 1.0, log};
  auto below = [&](double v) { return log ? v / 10 : v - (v == 0 ? 1 : std::fabs(v) * 0.5); };
  auto above = [&](double v) { return log ? v * 10 : v + (v == 0 ? 1 : std::fabs(v) * 0.5); };
  if (fix_lo && fix_hi) {
    a.lo = *fix_lo, a.hi = *fix_hi;
  } else if (fix_lo) {
    a.lo = *fix_lo;
    a.hi = r.empty() || flat(a.lo, r.hi) ? above(a.lo) : r.hi;
  } else if (fix_hi) {
    a.hi = *fix_hi;
    a.lo = r.empty() || flat(r.lo, a.hi) ? below(a.hi) : r.lo;
  } else if (!r.empty()) {
    a.lo = r.lo, a.hi = r.hi;
    if (flat(a.lo, a.hi)) {
      const double pad = a.lo == 0 ? 1 : std::fabs(a.lo) * 0.1;
      a.lo = log ? a.lo / std::sqrt(10.0) : a.lo - pad;
      a.hi = log ? a.hi * std::sqrt(10.0) : a.hi + pad;
    }
  }
  const double big = std::numeric_limits<double>::max();
  a.lo = std::max(a.lo, log ? std::numeric_limits<double>::min() : -big);
  a.hi = std::min(a.hi, big);
  return a;
}

// `prec` significant digits, the exponent written as the decade labels are: 2e-5, not 2e-05.
std::string number(double v, int prec = 3) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*g", prec, v);
  std::string s = buf;
  const size_t e = s.find('e');
  if (e == std::string::npos) return s;
  size_t digits = e + 1;
  std::string exp = s[digits] == '-' ? "-" : "";
  if (s[digits] == '-' || s[digits] == '+') ++digits;
  while (digits + 1 < s.size() && s[digits] == '0') ++digits;
  return s.substr(0, e + 1) + exp + s.substr(digits);
}

struct Tick {
  double v;
  std::string label;  // empty: an unlabelled (minor) tick
  bool major;
};

// 1, 2 or 5 times a power of ten giving about kTicks ticks (Heckbert's "nice numbers"), so labels
// read 0.02, 0.04 rather than 0.0173; enough digits that neighbouring labels differ.
std::vector<Tick> linear_ticks(double lo, double hi) {
  std::vector<Tick> ticks;
  const double raw = (hi * 0.5 - lo * 0.5) / (kTicks * 0.5);
  if (!(raw > 0) || !std::isfinite(raw)) return ticks;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  const double step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
  const double first = std::ceil(lo / step), last = std::floor(hi / step);
  if (!(last - first <= 50)) return ticks;
  const double top = std::max(std::fabs(lo), std::fabs(hi));
  const int prec = std::clamp(
      static_cast<int>(std::floor(std::log10(top)) - std::floor(std::log10(step))) + 1, 3, 15);
  for (double i = first; i <= last; ++i) {
    const double v = std::fabs(i) < 0.5 ? 0.0 : i * step;
    ticks.push_back({v, number(v, prec), true});
  }
  return ticks;
}

// Decades labelled 1e-4, 1e-3, ... with minor ticks at 2..9 times each; past ten decades only
// every second (third, ...) decade, without minor ticks. A range of under two decades labels its
// 2x and 5x ticks as plain numbers; one that holds no such tick falls back to linear ticks.
std::vector<Tick> log_ticks(double lo, double hi) {
  std::vector<Tick> ticks;
  const double l0 = std::log10(lo), l1 = std::log10(hi);
  const int k0 = static_cast<int>(std::ceil(l0 - 1e-9)),
            k1 = static_cast<int>(std::floor(l1 + 1e-9));
  const bool few = k1 - k0 + 1 < 2;
  const int every = std::max(1, (k1 - k0 + 10) / 10);
  for (int k = k0; k <= k1; ++k) {
    if (k % every != 0) continue;
    const double v = std::pow(10.0, k);
    ticks.push_back({v, few ? number(v) : "1e" + std::to_string(k), true});
  }
  if (every == 1) {
    for (int k = static_cast<int>(std::floor(l0)); k <= static_cast<int>(std::ceil(l1)); ++k) {
      for (int m = 2; m <= 9; ++m) {
        const double v = m * std::pow(10.0, k);
        if (v < lo || v > hi) continue;
        ticks.push_back({v, few && (m == 2 || m == 5) ? number(v) : "", false});
      }
    }
  }
  const auto labelled =
      std::count_if(ticks.begin(), ticks.end(), [](const Tick& t) { return !t.label.empty(); });
  return labelled >= 2 ? ticks : linear_ticks(lo, hi);
}

std::vector<Tick> ticks(const Axis& a) {
  return a.log ? log_ticks(a.lo, a.hi) : linear_ticks(a.lo, a.hi);
}

// Text and attribute values: the five XML specials escaped, control characters (not allowed in
// XML 1.0) replaced by spaces.
std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '"')
      out += "&quot;";
    else if (c == '\'')
      out += "&apos;";
    else if (static_cast<unsigned char>(c) < 0x20)
      out += ' ';
    else
      out += c;
  }
  return out;
}

struct Pt {
  double x, y;
};
struct Box {
  double x0, y0, x1, y1;
};

// Cuts segment a-b to the box (Liang-Barsky); false when none of it is inside. t0 > 0 (t1 < 1)
// when the start (end) was moved.
bool clip(Pt& a, Pt& b, const Box& box, double& t0, double& t1) {
  const double dx = b.x - a.x, dy = b.y - a.y;
  const double p[4] = {-dx, dx, -dy, dy};
  const double q[4] = {a.x - box.x0, box.x1 - a.x, a.y - box.y0, box.y1 - a.y};
  t0 = 0, t1 = 1;
  for (int i = 0; i < 4; ++i) {
    if (p[i] == 0) {
      if (q[i] < 0) return false;
      continue;
    }
    const double r = q[i] / p[i];
    if (p[i] < 0) {
      if (r > t1) return false;
      t0 = std::max(t0, r);
    } else {
      if (r < t0) return false;
      t1 = std::min(t1, r);
    }
  }
  const Pt a0 = a;
  a = {a0.x + t0 * dx, a0.y + t0 * dy};
  b = {a0.x + t1 * dx, a0.y + t1 * dy};
  return true;
}

bool crosses(Pt a, Pt b, const Box& box) {
  double t0, t1;
  return clip(a, b, box, t0, t1);
}

}  // namespace

std::string render_svg(const Plot& plot) {
  CYCLONE_CHECK(!plot.y_min || std::isfinite(*plot.y_min), "plot y_min is ", *plot.y_min);
  CYCLONE_CHECK(!plot.y_max || std::isfinite(*plot.y_max), "plot y_max is ", *plot.y_max);
  CYCLONE_CHECK(!plot.y_min || !plot.y_max || *plot.y_min < *plot.y_max, "plot y_min ",
                plot.y_min.value_or(0), " is not below y_max ", plot.y_max.value_or(0));
  CYCLONE_CHECK(
      !plot.y_log || ((!plot.y_min || *plot.y_min > 0) && (!plot.y_max || *plot.y_max > 0)),
      "plot y limits must be positive on a log axis");
  auto xs_of = [&](const PlotSeries& s) -> const std::vector<double>& {
    return s.x.empty() ? plot.x : s.x;
  };
  Range xr, left, right;
  bool has_right = false;
  for (double v : plot.x)
    if (usable(v, plot.x_log)) xr.add(v);
  for (const PlotSeries& s : plot.series) {
    const auto& xs = xs_of(s);
    CYCLONE_CHECK(s.y.size() == xs.size(), "plot series '", s.label, "' has ", s.y.size(),
                  " values for ", xs.size(), " x values");
    has_right |= s.right_axis;
    for (size_t i = 0; i < xs.size(); ++i) {
      if (!usable(xs[i], plot.x_log)) continue;
      xr.add(xs[i]);
      const double v = s.y[i];
      if (s.right_axis) {
        if (std::isfinite(v)) right.add(v);
      } else if (usable(v, plot.y_log) && v >= plot.y_min.value_or(-HUGE_VAL) &&
                 v <= plot.y_max.value_or(HUGE_VAL)) {
        left.add(v);
      }
    }
  }
  for (const Marker& m : plot.markers)
    if (usable(m.x, plot.x_log)) xr.add(m.x);
  const Axis xa = make_axis(xr, plot.x_log, {}, {});
  const Axis la = make_axis(left, plot.y_log, plot.y_min, plot.y_max);
  const Axis ra = make_axis(right, false, {}, {});

  const double right_margin = has_right ? 80 : 40;
  const double pw = kWidth - kLeft - right_margin;
  auto px = [&](double x) { return kLeft + xa.frac(x) * pw; };

  // Marker labels go above the frame, centred on their line; one that would overlap a label
  // already placed moves up a row. The frame starts below the rows used.
  struct Label {
    double x;
    int row;
    size_t marker;
  };
  std::vector<size_t> order;
  for (size_t i = 0; i < plot.markers.size(); ++i)
    if (usable(plot.markers[i].x, plot.x_log) && std::isfinite(px(plot.markers[i].x)))
      order.push_back(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return plot.markers[a].x < plot.markers[b].x; });
  std::vector<Label> labels;
  std::vector<std::vector<std::pair<double, double>>> rows(kMaxRows);
  int rows_used = 0;
  for (size_t i : order) {
    const Marker& m = plot.markers[i];
    if (m.label.empty()) continue;
    const double w = static_cast<double>(m.label.size()) * kCharWidth * 11 / 12;
    const double c = std::clamp(px(m.x), 4 + w / 2, kWidth - 4 - w / 2);
    int row = static_cast<int>(labels.size()) % kMaxRows;  // all rows full: overlap, spread out
    for (int r = 0; r < kMaxRows; ++r) {
      const bool free = std::none_of(rows[r].begin(), rows[r].end(), [&](const auto& e) {
        return c - w / 2 < e.second + 6 && e.first < c + w / 2 + 6;
      });
      if (free) {
        row = r;
        break;
      }
    }
    rows[row].push_back({c - w / 2, c + w / 2});
    rows_used = std::max(rows_used, row + 1);
    labels.push_back({c, row, i});
  }
  const double top = kTopBase + kRow * rows_used;
  const double ph = kHeight - top - kBottom;
  const Box frame{kLeft, top, kLeft + pw, top + ph};
  auto py = [&](double y, const Axis& a) { return top + ph - a.frac(y) * ph; };
  auto marker_color = [&](size_t i) {
    return plot.markers[i].color.empty() ? std::string(kMarkerPalette[i % kMarkerPalette.size()])
                                         : plot.markers[i].color;
  };

  // Each series as pixel polylines: broken at unusable points, cut at the frame.
  std::vector<std::vector<std::vector<Pt>>> lines(plot.series.size());
  for (size_t k = 0; k < plot.series.size(); ++k) {
    const PlotSeries& s = plot.series[k];
    const auto& xs = xs_of(s);
    const Axis& ya = s.right_axis ? ra : la;
    const bool ylog = s.right_axis ? false : plot.y_log;
    bool have_prev = false, open = false;
    Pt prev{};
    for (size_t i = 0; i < xs.size(); ++i) {
      const Pt p{px(xs[i]), py(s.y[i], ya)};
      if (!usable(xs[i], plot.x_log) || !usable(s.y[i], ylog) || !std::isfinite(p.x) ||
          !std::isfinite(p.y)) {
        have_prev = open = false;
        continue;
      }
      Pt a = prev, b = p;
      double t0, t1;
      if (have_prev && clip(a, b, frame, t0, t1)) {
        if (!(open && t0 == 0)) lines[k].push_back({a});
        lines[k].back().push_back(b);
        open = t1 == 1;
      } else {
        open = false;
      }
      prev = p;
      have_prev = true;
    }
  }

  std::ostringstream o;
  o.imbue(std::locale::classic());
  o.precision(6);
  o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\"" << kHeight
    << "\" viewBox=\"0 0 " << kWidth << ' ' << kHeight
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"" << kWidth / 2 << "\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">"
    << escape(plot.title) << "</text>\n";

  // Grid and tick labels: x along the bottom, the left axis, the right axis when used.
  for (const Tick& t : ticks(xa)) {
    const double x = px(t.v);
    if (!(x >= frame.x0 - 0.01 && x <= frame.x1 + 0.01)) continue;
    o << "<line x1=\"" << x << "\" y1=\"" << top << "\" x2=\"" << x << "\" y2=\"" << top + ph
      << "\" stroke=\"" << (t.major ? "#ddd" : "#f0f0f0") << "\"/>\n";
    if (!t.label.empty())
      o << "<text x=\"" << x << "\" y=\"" << top + ph + 16 << "\" text-anchor=\"middle\">"
        << t.label << "</text>\n";
  }
  auto y_ticks = [&](const Axis& a, bool on_right) {
    for (const Tick& t : ticks(a)) {
      const double y = py(t.v, a);
      if (!(y >= frame.y0 - 0.01 && y <= frame.y1 + 0.01)) continue;
      if (!on_right)
        o << "<line x1=\"" << kLeft << "\" y1=\"" << y << "\" x2=\"" << kLeft + pw << "\" y2=\""
          << y << "\" stroke=\"" << (t.major ? "#ddd" : "#f0f0f0") << "\"/>\n";
      if (!t.label.empty())
        o << "<text x=\"" << (on_right ? kLeft + pw + 6 : kLeft - 6) << "\" y=\"" << y + 4
          << "\" text-anchor=\"" << (on_right ? "start" : "end") << "\">" << t.label << "</text>\n";
    }
  };
  y_ticks(la, false);
  if (has_right) y_ticks(ra, true);
  o << "<rect class=\"frame\" x=\"" << kLeft << "\" y=\"" << top << "\" width=\"" << pw
    << "\" height=\"" << ph << "\" fill=\"none\" stroke=\"#333\"/>\n"
    << "<text x=\"" << kLeft + pw / 2 << "\" y=\"" << kHeight - 14 << "\" text-anchor=\"middle\">"
    << escape(plot.x_label) << "</text>\n"
    << "<text transform=\"translate(18," << top + ph / 2
    << ") rotate(-90)\" text-anchor=\"middle\">" << escape(plot.left_label) << "</text>\n";
  if (has_right) {
    o << "<text transform=\"translate(" << kWidth - 14 << ',' << top + ph / 2
      << ") rotate(90)\" text-anchor=\"middle\">" << escape(plot.right_label) << "</text>\n";
  }

  // Series in the given order (a faint raw series first lies behind its smoothed one).
  auto stroke = [&](const PlotSeries& s) {
    std::ostringstream a;
    a.imbue(std::locale::classic());
    const double width = std::isfinite(s.width) && s.width > 0 ? std::min(s.width, 100.0) : 1.5;
    const double opacity = std::isfinite(s.opacity) ? std::clamp(s.opacity, 0.0, 1.0) : 1.0;
    a << "stroke=\"" << escape(s.color) << "\" stroke-width=\"" << width << '"';
    if (opacity < 1) a << " stroke-opacity=\"" << opacity << '"';
    if (s.dashed) a << " stroke-dasharray=\"" << 4 * width << ',' << 3 * width << '"';
    return a.str();
  };
  for (size_t k = 0; k < plot.series.size(); ++k) {
    for (const auto& line : lines[k]) {
      o << "<polyline fill=\"none\" " << stroke(plot.series[k])
        << " stroke-linejoin=\"round\" points=\"";
      for (size_t i = 0; i < line.size(); ++i) o << (i ? " " : "") << line[i].x << ',' << line[i].y;
      o << "\"/>\n";
    }
  }
  for (size_t i : order) {
    const double x = px(plot.markers[i].x);
    o << "<line class=\"marker\" x1=\"" << x << "\" y1=\"" << top << "\" x2=\"" << x << "\" y2=\""
      << top + ph << "\" stroke=\"" << escape(marker_color(i))
      << "\" stroke-width=\"1.2\" stroke-dasharray=\"5,3\"/>\n";
  }
  for (const Label& l : labels) {
    o << "<text class=\"marker-label\" x=\"" << l.x << "\" y=\"" << top - 5 - kRow * l.row
      << "\" text-anchor=\"middle\" font-size=\"11\" fill=\"" << escape(marker_color(l.marker))
      << "\">" << escape(plot.markers[l.marker].label) << "</text>\n";
  }

  // The legend: every labelled series and marker, in the frame corner crossed by the fewest line
  // segments (upper right, upper left, lower left, lower right on a tie, as matplotlib's "best").
  std::vector<size_t> entries;  // series k, or markers as series.size() + i
  size_t chars = 0;
  for (size_t k = 0; k < plot.series.size(); ++k)
    if (!plot.series[k].label.empty())
      entries.push_back(k), chars = std::max(chars, plot.series[k].label.size());
  for (size_t i : order)
    if (!plot.markers[i].label.empty())
      entries.push_back(plot.series.size() + i),
          chars = std::max(chars, plot.markers[i].label.size());
  if (entries.empty()) return o.str() + "</svg>\n";
  const double bw = 46 + kCharWidth * static_cast<double>(chars);
  const double bh = 8 + 18 * static_cast<double>(entries.size());
  const double inset = 8;
  const std::array<Pt, 4> corners = {Pt{frame.x1 - inset - bw, frame.y0 + inset},
                                     Pt{frame.x0 + inset, frame.y0 + inset},
                                     Pt{frame.x0 + inset, frame.y1 - inset - bh},
                                     Pt{frame.x1 - inset - bw, frame.y1 - inset - bh}};
  size_t best = 0, best_hits = std::numeric_limits<size_t>::max();
  for (size_t c = 0; c < corners.size(); ++c) {
    const Box box{corners[c].x, corners[c].y, corners[c].x + bw, corners[c].y + bh};
    size_t hits = 0;
    for (const auto& series_lines : lines)
      for (const auto& line : series_lines)
        for (size_t i = 1; i < line.size(); ++i) hits += crosses(line[i - 1], line[i], box);
    for (size_t i : order)
      hits +=
          4 * crosses({px(plot.markers[i].x), frame.y0}, {px(plot.markers[i].x), frame.y1}, box);
    if (hits < best_hits) best = c, best_hits = hits;
  }
  const Pt at = corners[best];
  o << "<g class=\"legend\">\n<rect x=\"" << at.x << "\" y=\"" << at.y << "\" width=\"" << bw
    << "\" height=\"" << bh << "\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n";
  for (size_t e = 0; e < entries.size(); ++e) {
    const double ly = at.y + 18 + 18 * static_cast<double>(e);  // text baseline
    const double sx = at.x + 8;
    if (entries[e] < plot.series.size()) {
      const PlotSeries& s = plot.series[entries[e]];
      o << "<line x1=\"" << sx << "\" y1=\"" << ly - 4 << "\" x2=\"" << sx + 26 << "\" y2=\""
        << ly - 4 << "\" " << stroke(s) << "/>";
    } else {
      const size_t i = entries[e] - plot.series.size();
      o << "<line x1=\"" << sx + 13 << "\" y1=\"" << ly - 12 << "\" x2=\"" << sx + 13 << "\" y2=\""
        << ly + 3 << "\" stroke=\"" << escape(marker_color(i))
        << "\" stroke-width=\"1.2\" stroke-dasharray=\"5,3\"/>";
    }
    const std::string& text = entries[e] < plot.series.size()
                                  ? plot.series[entries[e]].label
                                  : plot.markers[entries[e] - plot.series.size()].label;
    o << "<text x=\"" << sx + 32 << "\" y=\"" << ly << "\">" << escape(text) << "</text>\n";
  }
  o << "</g>\n</svg>\n";
  return o.str();
}

void write_svg(const Plot& plot, const std::string& path) {
  // A plot named into a folder of its own (microDL's fig_fname: plots/lr.svg) makes the folder.
  if (const auto dir = std::filesystem::path(path).parent_path(); !dir.empty())
    make_directories(dir.string());
  write_file_atomic(path, render_svg(plot));
}

}  // namespace cyclone::train
