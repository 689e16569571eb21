#include "cyclone/core/progress.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace cyclone {

namespace {

// Under mpirun, OpenMPI gives each rank a pseudo-terminal whatever mpirun's own output is (a file,
// a pipe), and forwards several ranks' output: bars redrawn with \r would land in log files.
bool under_mpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMIX_RANK") != nullptr;
}

bool auto_terminal(std::FILE* out) {
  if (out == nullptr || !::isatty(::fileno(out)) || under_mpirun()) return false;
  const char* term = std::getenv("TERM");
  return term == nullptr || std::strcmp(term, "dumb") != 0;
}

std::string fields_text(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string s;
  for (const auto& [name, value] : fields) s += " " + name + " " + value;
  return s;
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long long total = std::llround(seconds);
  const long long h = total / 3600, m = total % 3600 / 60, s = total % 60;
  char buf[48];
  if (h > 0)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", h, m, s);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", m, s);
  return buf;
}

std::string format_double(const char* printf_format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, printf_format, value);
  return buf;
}

std::string count_noun(int64_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

std::string format_rate(double per_second) {
  if (!std::isfinite(per_second) || per_second < 0) return "?";
  static const char* const kSuffix[] = {"", "k", "M", "G", "T"};
  int i = 0;
  // 999.5 and up would print as "1000": promote it so that every value keeps three digits.
  while (per_second >= 999.5 && i < 4) {
    per_second /= 1000;
    ++i;
  }
  char buf[32];
  if (per_second < 0.9995)
    std::snprintf(buf, sizeof buf, "%.3g", per_second);
  else if (per_second < 9.995)
    std::snprintf(buf, sizeof buf, "%.2f", per_second);
  else if (per_second < 99.95)
    std::snprintf(buf, sizeof buf, "%.1f", per_second);
  else
    std::snprintf(buf, sizeof buf, "%.0f", per_second);
  return std::string(buf) + kSuffix[i];
}

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit,
                         ProgressOptions options)
    : label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      options_(std::move(options)),
      terminal_(options_.mode < 0 ? auto_terminal(options_.out) : options_.mode == 1),
      start_(now()) {
  // Plain mode counts plain_every_seconds from the start, not from a first line.
  if (!terminal_) last_draw_ = start_;
}

double ProgressBar::now() const {
  if (options_.now) return options_.now();
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// "<fields> | 1.52k img/s ETA 0:45", shared by both modes.
std::string ProgressBar::status(int64_t done, int64_t units_done,
                                const std::vector<std::pair<std::string, std::string>>& fields,
                                double elapsed) const {
  std::string s = fields_text(fields) + " | ";
  s += elapsed > 0 ? format_rate(static_cast<double>(units_done) / elapsed) : "?";
  s += " " + unit_ + "/s";
  if (total_ > 0) {
    const bool known = done > 0 && elapsed > 0;
    const double eta = known ? elapsed * static_cast<double>(total_ - done) / done : -1;
    s += " ETA " + format_duration(std::max(eta, known ? 0.0 : -1.0));
  }
  return s;
}

void ProgressBar::update(int64_t done, int64_t units_done,
                         const std::vector<std::pair<std::string, std::string>>& fields) {
  std::FILE* out = options_.out;
  const double t = now();
  const bool complete = total_ > 0 && done >= total_;
  const double fraction =
      total_ > 0 ? std::clamp(static_cast<double>(done) / total_, 0.0, 1.0) : 0.0;
  // Integer arithmetic: 29 / 100 * 100 in doubles is 28.999... and would print 28%.
  const int percent =
      total_ > 0 ? static_cast<int>(std::clamp<int64_t>(done, 0, total_) * 100 / total_) : 0;
  // Strings here are appended piece by piece: g++ 12 warns (-Wrestrict, falsely) on a literal
  // + std::to_string(...).
  std::string counts = std::to_string(done);
  if (total_ > 0) {
    counts += '/';
    counts += std::to_string(total_);
  }
  const std::string tail = status(done, units_done, fields, t - start_);

  if (!terminal_) {
    const int every = options_.plain_every_percent;
    const int64_t bucket = total_ > 0 && every > 0 ? percent / every : 0;
    if (bucket <= last_bucket_ && t - last_draw_ < options_.plain_every_seconds) return;
    last_bucket_ = std::max(last_bucket_, bucket);
    last_draw_ = t;
    std::string line = label_ + " " + counts;
    if (total_ > 0) line += " (" + std::to_string(percent) + "%)";
    line += tail + "\n";
    std::fputs(line.c_str(), out);
    std::fflush(out);
    return;
  }

  // The last state is always drawn, so that the bar a user sees last is not stale.
  if (last_draw_ >= 0 && t - last_draw_ < options_.min_redraw_seconds && !complete) return;
  last_draw_ = t;
  std::string right = " " + counts;
  if (total_ > 0) {
    right += ' ';
    right += std::to_string(percent);
    right += '%';
  }
  right += tail;
  std::string line = label_;
  // One column stays free: a line exactly as wide as the terminal wraps on some terminals and
  // then '\r' no longer returns to its start.
  const int width = std::max(options_.columns - 1, 20);
  if (total_ > 0) {
    const int room = width - static_cast<int>(label_.size() + right.size()) - 3;
    const int bar = std::clamp(room, 10, 40);
    const int filled = static_cast<int>(fraction * bar);
    std::string cells(bar, ' ');
    std::fill(cells.begin(), cells.begin() + filled, '=');
    if (filled < bar && filled > 0) cells[filled - 1] = '>';
    line += " [" + cells + "]";
  }
  line += right;
  if (line.size() > static_cast<size_t>(width)) line.resize(width);
  const size_t w = line.size();
  if (w < drawn_width_) line.append(drawn_width_ - w, ' ');
  drawn_width_ = w;
  std::fputs(("\r" + line).c_str(), out);
  std::fflush(out);
}

void ProgressBar::finish(const std::string& summary_line) {
  std::FILE* out = options_.out;
  if (terminal_ && drawn_width_ > 0) {
    std::string blank(drawn_width_ + 2, ' ');
    blank.front() = blank.back() = '\r';
    std::fputs(blank.c_str(), out);
    drawn_width_ = 0;
  }
  std::fputs((summary_line + "\n").c_str(), out);
  std::fflush(out);
}

}  // namespace cyclone
