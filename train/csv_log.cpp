#include "cyclone/train/csv_log.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "cyclone/core/error.h"
#include "cyclone/core/file_util.h"

namespace cyclone::train {

namespace {

std::string quote_cell(const std::string& cell) {
  if (cell.find_first_of(",\"\r\n") == std::string::npos) return cell;
  std::string q = "\"";
  for (char c : cell) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

std::string join_line(const std::vector<std::string>& cells) {
  std::string line;
  for (size_t i = 0; i < cells.size(); ++i) {
    if (i > 0) line += ',';
    line += quote_cell(cells[i]);
  }
  return line + "\n";
}

// One CSV record of an existing file: its exact text (newline included) and its first cell.
struct Record {
  std::string text;
  std::string first_cell;
};

// Splits on newlines outside quotes, so a quoted cell holding a newline stays in its record. The
// bool says whether the text ended cleanly (a record cut short by a crash ends it otherwise).
std::pair<std::vector<Record>, bool> split_records(const std::string& text) {
  std::vector<Record> records;
  Record cur;
  bool in_quotes = false, first_done = false;
  for (char c : text) {
    cur.text += c;
    if (c == '"') {
      in_quotes = !in_quotes;
      continue;
    }
    if (in_quotes) {
      if (!first_done) cur.first_cell += c;
      continue;
    }
    if (c == '\n') {
      records.push_back(std::move(cur));
      cur = Record{};
      first_done = false;
    } else if (c == ',') {
      first_done = true;
    } else if (!first_done && c != '\r') {
      cur.first_cell += c;
    }
  }
  const bool clean = cur.text.empty() && !in_quotes;
  return {std::move(records), clean};
}

std::string without_newline(std::string line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  return line;
}

std::optional<double> parse_number(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

struct CsvLog::Impl {
  std::string path;
  std::vector<std::string> columns;
  std::FILE* file = nullptr;
  int64_t rows = 0;

  ~Impl() {
    if (file != nullptr) std::fclose(file);
  }

  [[noreturn]] void fail(const char* what, int err) {
    // A directory in the way is named as write_file_atomic names it.
    CYCLONE_CHECK(err != EISDIR, "cannot write ", path, ": it is a directory, not a file");
    CYCLONE_THROW("cannot write ", path, ": ", what, " failed: ", errno_reason(err));
  }

  void open(const char* mode) {
    file = std::fopen(path.c_str(), mode);
    if (file == nullptr) fail("open", errno);
  }

  void write(const std::string& text) {
    if (file == nullptr) fail("write", EIO);  // an earlier write failed and closed it
    const long before = std::ftell(file);
    errno = 0;
    // Rows are few (one per log interval): pushing each to the OS keeps it through a crash and
    // lets `tail -f` follow the run.
    if (std::fwrite(text.data(), 1, text.size(), file) == text.size() && std::fflush(file) == 0)
      return;
    const int err = errno ? errno : EIO;
    // A full disk: no half row (nor a header-only stub) is left under the log's name.
    std::fclose(file);
    file = nullptr;
    if (before == 0) {
      std::remove(path.c_str());
    } else if (before > 0) {
      (void)::truncate(path.c_str(), before);
    }
    fail("write", err);
  }

  // Keeps the rows of an existing file that the resumed run still stands behind.
  void resume(const std::optional<double>& keep_rows_upto) {
    const std::string text = read_file(path);
    const auto [records, clean] = split_records(text);
    const std::string want = without_newline(join_line(columns));
    if (records.empty() && text.empty()) {
      open("w");
      write(join_line(columns));
      return;
    }
    // A header alone without its newline (a crash right after creating the file) is still one.
    const std::string have = without_newline(records.empty() ? text : records[0].text);
    CYCLONE_CHECK(have == want, "cannot append to CSV log ", path, ": its header '", have,
                  "' differs from this run's columns '", want,
                  "' (move the old file away or start a fresh run)");
    std::string kept = want + "\n";
    bool dropped = !clean;
    for (size_t i = 1; i < records.size(); ++i) {
      const auto first = parse_number(records[i].first_cell);
      if (keep_rows_upto && first && *first > *keep_rows_upto) {
        dropped = true;
        continue;
      }
      kept += records[i].text;
      ++rows;
    }
    if (dropped) write_file_atomic(path, kept);
    open("a");
  }
};

CsvLog::CsvLog(const std::string& path, std::vector<std::string> columns, CsvMode mode,
               std::optional<double> keep_rows_upto)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->columns = std::move(columns);
  CYCLONE_CHECK(!impl_->columns.empty(), "CSV log ", path, " needs at least one column");
  namespace fs = std::filesystem;
  std::error_code ec;
  if (mode == CsvMode::kAppend && fs::exists(path, ec)) {
    impl_->resume(keep_rows_upto);
  } else {
    impl_->open("w");
    impl_->write(join_line(impl_->columns));
  }
}

CsvLog::~CsvLog() {
  if (!impl_ || impl_->file == nullptr) return;
  if (::fsync(::fileno(impl_->file)) != 0 && errno != EINVAL)
    std::fprintf(stderr, "warning: cannot sync CSV log %s: %s\n", impl_->path.c_str(),
                 errno_reason(errno).c_str());
}

CsvLog::CsvLog(CsvLog&&) noexcept = default;

CsvLog& CsvLog::operator=(CsvLog&& other) noexcept {
  if (this != &other) {
    CsvLog old(std::move(*this));
    impl_ = std::move(other.impl_);
  }
  return *this;
}

std::string CsvLog::format_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void CsvLog::row(const std::vector<double>& values) {
  std::vector<std::string> cells;
  cells.reserve(values.size());
  for (double v : values) cells.push_back(format_number(v));
  row(cells);
}

void CsvLog::row(const std::vector<std::string>& cells) {
  CYCLONE_CHECK(cells.size() == impl_->columns.size(), "CSV log ", impl_->path, ": a row of ",
                cells.size(), " cells for ", impl_->columns.size(), " columns");
  impl_->write(join_line(cells));
  ++impl_->rows;
}

void CsvLog::flush() {
  errno = 0;
  if (impl_->file == nullptr) impl_->fail("flush", EIO);
  if (std::fflush(impl_->file) != 0) impl_->fail("flush", errno);
  if (::fsync(::fileno(impl_->file)) != 0 && errno != EINVAL) impl_->fail("fsync", errno);
}

const std::string& CsvLog::path() const { return impl_->path; }
const std::vector<std::string>& CsvLog::columns() const { return impl_->columns; }
int64_t CsvLog::rows() const { return impl_->rows; }

}  // namespace cyclone::train
