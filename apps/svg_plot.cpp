#include "svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "cyclone/core/error.h"

namespace cyclone::apps {

namespace {

constexpr double kWidth = 800, kHeight = 480;
constexpr double kLeft = 80, kRight = 80, kTop = 40, kBottom = 60;
constexpr int kTicks = 5;

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  // A non-empty span: a flat series (a constant rate) still gets a visible axis.
  void finish() {
    if (!(lo <= hi)) lo = 0, hi = 1;
    if (hi == lo) {
      const double pad = lo == 0 ? 1 : std::fabs(lo) * 0.1;
      lo -= pad;
      hi += pad;
    }
  }
};

// Tick spacing of 1, 2 or 5 times a power of ten giving about kTicks ticks (Heckbert's "nice
// numbers"), so labels read 0.02, 0.04 rather than 0.0173.
double nice_step(double span) {
  const double raw = span / kTicks;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

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
    else
      out += c;
  }
  return out;
}

std::string label(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", std::fabs(v) < 1e-300 ? 0.0 : v);
  return buf;
}

}  // namespace

std::string render_svg(const Plot& plot) {
  Range xr, left, right;
  for (double v : plot.x) xr.add(v);
  bool has_right = false;
  for (const PlotSeries& s : plot.series) {
    CYCLONE_CHECK(s.y.size() == plot.x.size(), "plot series '", s.label, "' has ", s.y.size(),
                  " values for ", plot.x.size(), " x values");
    for (double v : s.y) (s.right_axis ? right : left).add(v);
    has_right |= s.right_axis;
  }
  xr.finish();
  left.finish();
  right.finish();
  const double pw = kWidth - kLeft - kRight, ph = kHeight - kTop - kBottom;
  auto px = [&](double x) { return kLeft + (x - xr.lo) / (xr.hi - xr.lo) * pw; };
  auto py = [&](double y, const Range& r) { return kTop + ph - (y - r.lo) / (r.hi - r.lo) * ph; };

  std::ostringstream o;
  o.precision(6);
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\"" << kHeight
    << "\" viewBox=\"0 0 " << kWidth << ' ' << kHeight
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"" << kWidth / 2 << "\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">"
    << escape(plot.title) << "</text>\n"
    << "<rect x=\"" << kLeft << "\" y=\"" << kTop << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"none\" stroke=\"#333\"/>\n";

  // Grid and tick labels: x along the bottom, the left axis, the right axis when used.
  const double xs = nice_step(xr.hi - xr.lo);
  for (double v = std::ceil(xr.lo / xs) * xs; v <= xr.hi + xs * 1e-9; v += xs) {
    o << "<line x1=\"" << px(v) << "\" y1=\"" << kTop << "\" x2=\"" << px(v) << "\" y2=\""
      << kTop + ph << "\" stroke=\"#ddd\"/>\n<text x=\"" << px(v) << "\" y=\"" << kTop + ph + 16
      << "\" text-anchor=\"middle\">" << label(v) << "</text>\n";
  }
  auto y_ticks = [&](const Range& r, bool on_right) {
    const double ys = nice_step(r.hi - r.lo);
    for (double v = std::ceil(r.lo / ys) * ys; v <= r.hi + ys * 1e-9; v += ys) {
      if (!on_right) {
        o << "<line x1=\"" << kLeft << "\" y1=\"" << py(v, r) << "\" x2=\"" << kLeft + pw
          << "\" y2=\"" << py(v, r) << "\" stroke=\"#ddd\"/>\n";
      }
      o << "<text x=\"" << (on_right ? kLeft + pw + 6 : kLeft - 6) << "\" y=\"" << py(v, r) + 4
        << "\" text-anchor=\"" << (on_right ? "start" : "end") << "\">" << label(v) << "</text>\n";
    }
  };
  y_ticks(left, false);
  if (has_right) y_ticks(right, true);
  o << "<text x=\"" << kLeft + pw / 2 << "\" y=\"" << kHeight - 14 << "\" text-anchor=\"middle\">"
    << escape(plot.x_label) << "</text>\n"
    << "<text transform=\"translate(18," << kTop + ph / 2
    << ") rotate(-90)\" text-anchor=\"middle\">" << escape(plot.left_label) << "</text>\n";
  if (has_right) {
    o << "<text transform=\"translate(" << kWidth - 14 << ',' << kTop + ph / 2
      << ") rotate(90)\" text-anchor=\"middle\">" << escape(plot.right_label) << "</text>\n";
  }

  // One polyline per finite run of each series, then a legend.
  for (size_t k = 0; k < plot.series.size(); ++k) {
    const PlotSeries& s = plot.series[k];
    const Range& r = s.right_axis ? right : left;
    bool open = false;
    for (size_t i = 0; i < plot.x.size(); ++i) {
      const bool ok = std::isfinite(plot.x[i]) && std::isfinite(s.y[i]);
      if (ok && !open) {
        o << "<polyline fill=\"none\" stroke=\"" << escape(s.color)
          << "\" stroke-width=\"1.5\" points=\"";
        open = true;
      }
      if (ok) o << px(plot.x[i]) << ',' << py(s.y[i], r) << ' ';
      if (!ok && open) {
        o << "\"/>\n";
        open = false;
      }
    }
    if (open) o << "\"/>\n";
    const double ly = kTop + 16 + 18 * static_cast<double>(k);
    o << "<line x1=\"" << kLeft + 12 << "\" y1=\"" << ly - 4 << "\" x2=\"" << kLeft + 36
      << "\" y2=\"" << ly - 4 << "\" stroke=\"" << escape(s.color) << "\" stroke-width=\"2\"/>"
      << "<text x=\"" << kLeft + 42 << "\" y=\"" << ly << "\">" << escape(s.label) << "</text>\n";
  }
  o << "</svg>\n";
  return o.str();
}

void write_svg(const Plot& plot, const std::string& path) {
  const std::string svg = render_svg(plot);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    CYCLONE_CHECK(f.good(), "cannot write plot file ", tmp);
    f << svg;
    f.close();
    if (!f) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      CYCLONE_THROW("cannot write plot file ", tmp);
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    CYCLONE_THROW("cannot rename ", tmp, " to ", path);
  }
}

}  // namespace cyclone::apps
