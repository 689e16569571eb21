// The lines a run prints, also kept in its training.log (microDL's model_dir/training.log): every
// line printed through log_print goes to stdout and, while a TrainingLog is open, is appended to
// the file. A progress bar's redraws stay on the terminal; its final line is logged.
#pragma once

#include <string>

namespace cyclone::train {

// Opens `path` for appending for the lifetime of this object (one at a time per process).
class TrainingLog {
 public:
  explicit TrainingLog(const std::string& path);
  ~TrainingLog();
  TrainingLog(const TrainingLog&) = delete;
  TrainingLog& operator=(const TrainingLog&) = delete;
};

// printf to stdout, and the same text to the open training.log.
void log_print(const char* format, ...) __attribute__((format(printf, 1, 2)));
// The same to stderr (warnings, the reason a run stopped).
void log_error(const char* format, ...) __attribute__((format(printf, 1, 2)));
// One line to the training.log only (what a progress bar showed on the terminal).
void log_to_file(const std::string& line);

}  // namespace cyclone::train
