// Progress of long work (an epoch, an LR range test, a download): a bar redrawn in place on a
// terminal, or plain lines every few percent / seconds when the output is a file or a CI log.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace cyclone {

struct ProgressOptions {
  std::FILE* out = stdout;
  // -1: a bar when `out` is a terminal and TERM is not "dumb", else plain lines; 0: plain lines
  // (never '\r' nor escape codes); 1: a bar redrawn with '\r'.
  int mode = -1;
  double min_redraw_seconds = 0.1;  // bar: redraws at most this often (a redraw costs a write)
  double plain_every_seconds = 15;  // plain: a line at least this often...
  int plain_every_percent = 25;     // ...and whenever done crosses a multiple of this percent
  int columns = 100;                // the bar line never exceeds this width
  // Seconds on a monotonic clock; empty: std::chrono::steady_clock. Tests inject their own.
  std::function<double()> now;
};

class ProgressBar {
 public:
  // `total` steps of work (<= 0: unknown, shown without percent, bar or ETA); `unit` names what
  // the rate counts ("img" -> "1.52k img/s").
  ProgressBar(std::string label, int64_t total, std::string unit = "img",
              ProgressOptions options = {});

  // `done` of `total` steps finished, `units_done` units in them (the rate is units per second
  // since construction); `fields` are shown as "name value" pairs, e.g. {"loss", "0.4321"}.
  void update(int64_t done, int64_t units_done,
              const std::vector<std::pair<std::string, std::string>>& fields = {});
  // Always prints `summary_line` on its own line (on a terminal, over the bar).
  void finish(const std::string& summary_line);

  bool terminal() const { return terminal_; }

 private:
  std::string status(int64_t done, int64_t units_done,
                     const std::vector<std::pair<std::string, std::string>>& fields,
                     double elapsed) const;
  double now() const;

  std::string label_;
  int64_t total_;
  std::string unit_;
  ProgressOptions options_;
  bool terminal_;
  double start_;
  double last_draw_ = -1;    // bar: time of the last redraw (-1: none); plain: of the last line
  int64_t last_bucket_ = 0;  // plain: the last percent multiple reported
  size_t drawn_width_ = 0;   // bar: characters on the line now, to blank a shorter redraw
};

// "0:45", "12:03", "1:02:03"; "?" for a negative or non-finite duration.
std::string format_duration(double seconds);
// Three significant digits with a k / M / G suffix: "0.512", "152", "1.52k", "15.2M".
std::string format_rate(double per_second);
// One number through a printf format ("%.4f", "%.3g"): the fields of progress and summary lines.
std::string format_double(const char* printf_format, double value);
// A count and its noun, plural unless it is 1: "1 step", "263 steps", "0 epochs".
std::string count_noun(int64_t n, const std::string& noun);

}  // namespace cyclone
