#include "cyclone/train/log.h"

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "cyclone/core/error.h"
#include "cyclone/core/file_util.h"
#include "cyclone/dist/world.h"

namespace cyclone::train {

namespace {

struct LogState {
  std::mutex mu;
  std::FILE* file = nullptr;
  std::string path;
};

LogState& state() {
  static LogState s;
  return s;
}

std::string vformat(const char* format, va_list args) {
  va_list copy;
  va_copy(copy, args);
  const int n = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  std::string out(n > 0 ? static_cast<size_t>(n) : 0, '\0');
  if (n > 0) std::vsnprintf(out.data(), out.size() + 1, format, args);
  return out;
}

void append(const std::string& text) {
  LogState& s = state();
  std::lock_guard lk(s.mu);
  if (!s.file) return;
  errno = 0;
  if (std::fputs(text.c_str(), s.file) < 0 || std::fflush(s.file) != 0) {
    // A full disk or a file-size limit: say so once and stop logging rather than failing the
    // run over its log.
    const std::string why = errno ? errno_reason(errno) : "disk full?";
    std::fprintf(stderr, "warning: cannot write %s: %s; training.log stops here\n", s.path.c_str(),
                 why.c_str());
    std::fclose(s.file);
    s.file = nullptr;
  }
}

}  // namespace

TrainingLog::TrainingLog(const std::string& path) {
  LogState& s = state();
  std::lock_guard lk(s.mu);
  CYCLONE_CHECK(s.file == nullptr, "a training log is already open: ", s.path);
  s.file = std::fopen(path.c_str(), "a");
  if (!s.file)
    throw Error("cannot open the training log '" + path + "' for writing: " + errno_reason(errno));
  s.path = path;
  const std::time_t now = std::time(nullptr);
  char stamp[64];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  std::fprintf(s.file, "---- %s ----\n", stamp);
  std::fflush(s.file);
}

TrainingLog::~TrainingLog() {
  LogState& s = state();
  std::lock_guard lk(s.mu);
  if (s.file) std::fclose(s.file);
  s.file = nullptr;
}

void log_print(const char* format, ...) {
  va_list args;
  va_start(args, format);
  const std::string text = vformat(format, args);
  va_end(args);
  if (!dist::world().is_root()) return;  // one voice per job: rank 0's
  std::fputs(text.c_str(), stdout);
  // Seen as it happens through a pipe (tee, a scheduler's log, mpirun's forwarding) too, where
  // stdout is fully buffered: these lines are few.
  std::fflush(stdout);
  append(text);
}

void log_error(const char* format, ...) {
  va_list args;
  va_start(args, format);
  const std::string text = dist::rank_prefix() + vformat(format, args);
  va_end(args);
  std::fflush(stdout);
  std::fputs(text.c_str(), stderr);
  append(text);
}

void log_to_file(const std::string& line) { append(line + "\n"); }

}  // namespace cyclone::train
