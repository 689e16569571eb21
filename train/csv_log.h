// CSV logs of a run (history.csv, lr_finder.csv): one header line, one line per row, written as
// they come so that a killed run keeps every row it logged, and resumable.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cyclone::train {

enum class CsvMode {
  kTruncate,  // a new file holding only the header
  kAppend,    // resume: keep the existing rows (see CsvLog) and add to them
};

class CsvLog {
 public:
  // kAppend on an existing file requires its header to equal `columns` (else an Error naming the
  // path and both headers). Rows whose first cell is a number greater than `keep_rows_upto` are
  // dropped, and so is a last line cut short by a crash: a resumed run rewrites (atomically) the
  // rows its checkpoint does not cover. kAppend on a missing or empty file starts it like
  // kTruncate. Errors name the path and the system's reason.
  CsvLog(const std::string& path, std::vector<std::string> columns,
         CsvMode mode = CsvMode::kTruncate, std::optional<double> keep_rows_upto = {});
  ~CsvLog();  // flushes; a failure is reported on stderr, never thrown
  CsvLog(CsvLog&&) noexcept;
  CsvLog& operator=(CsvLog&&) noexcept;

  // One row of numbers, printed with %.9g (enough digits to round-trip a float), NaN as "nan",
  // infinities as "inf" / "-inf". The width must match the columns.
  void row(const std::vector<double>& values);
  // One row of preformatted cells; a cell holding a comma, quote or newline is quoted (RFC 4180).
  void row(const std::vector<std::string>& cells);

  // Each row reaches the OS when written; flush() also fsyncs it to the disk.
  void flush();

  const std::string& path() const;
  const std::vector<std::string>& columns() const;
  // Rows in the file: those kept from before (kAppend) plus those written since.
  int64_t rows() const;

  // The text of one number as row() writes it.
  static std::string format_number(double v);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cyclone::train
