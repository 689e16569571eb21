// CSV logs: header, number formatting that round-trips, resume (append) with the rows a
// checkpoint covers, and errors that name the file.
#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "cyclone/core/file_util.h"
#include "cyclone/train/csv_log.h"

namespace cyclone::train {
namespace {

namespace fs = std::filesystem;

using ::cyclone::testing::TempDir;

TEST(CsvLog, HeaderAndRows) {
  TempDir dir;
  const std::string path = dir.file("history.csv");
  {
    CsvLog log(path, {"step", "loss", "lr"});
    EXPECT_EQ(read_file(path), "step,loss,lr\n");  // the header is there before any row
    log.row(std::vector<double>{1, 0.5, 1e-3});
    log.row(std::vector<std::string>{"2", "0.25", "warmup, then \"cosine\""});
    EXPECT_EQ(log.rows(), 2);
  }
  EXPECT_EQ(read_file(path), "step,loss,lr\n1,0.5,0.001\n2,0.25,\"warmup, then \"\"cosine\"\"\"\n");
}

TEST(CsvLog, NumbersRoundTripFloat) {
  TempDir dir;
  const std::string path = dir.file("lr_finder.csv");
  const std::vector<float> values = {0.1f, 1.0f / 3, 123456789.0f, 1e-30f, -2.5e20f, 7.0f};
  {
    CsvLog log(path, {"a", "b", "c", "d", "e", "f"});
    log.row(std::vector<double>(values.begin(), values.end()));
  }
  const std::string text = read_file(path);
  const std::string line = text.substr(text.find('\n') + 1);
  const char* p = line.c_str();
  for (float v : values) {
    char* end = nullptr;
    EXPECT_EQ(std::strtof(p, &end), v) << line;
    p = end + 1;
  }
  EXPECT_EQ(CsvLog::format_number(std::nan("")), "nan");
  EXPECT_EQ(CsvLog::format_number(-std::nan("")), "nan");
  EXPECT_EQ(CsvLog::format_number(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(CsvLog::format_number(-std::numeric_limits<double>::infinity()), "-inf");
  EXPECT_EQ(CsvLog::format_number(2.0), "2");
  EXPECT_EQ(CsvLog::format_number(1e-12), "1e-12");
}

TEST(CsvLog, TruncateReplacesOldFile) {
  TempDir dir;
  const std::string path = dir.file("log.csv");
  write_file_atomic(path, "old,header\n1,2\n");
  CsvLog log(path, {"step", "x"});
  log.row(std::vector<double>{0, 1});
  log.flush();
  EXPECT_EQ(read_file(path), "step,x\n0,1\n");
}

TEST(CsvLog, AppendKeepsRowsAndContinues) {
  TempDir dir;
  const std::string path = dir.file("log.csv");
  {
    CsvLog log(path, {"step", "loss"});
    log.row(std::vector<double>{1, 0.9});
    log.row(std::vector<double>{2, 0.8});
  }
  {
    CsvLog log(path, {"step", "loss"}, CsvMode::kAppend);
    EXPECT_EQ(log.rows(), 2);
    log.row(std::vector<double>{3, 0.7});
  }
  EXPECT_EQ(read_file(path), "step,loss\n1,0.9\n2,0.8\n3,0.7\n");
}

TEST(CsvLog, AppendToMissingOrEmptyFileWritesHeader) {
  TempDir dir;
  {
    CsvLog log(dir.file("new.csv"), {"step", "loss"}, CsvMode::kAppend, 5.0);
    log.row(std::vector<double>{1, 2});
  }
  EXPECT_EQ(read_file(dir.file("new.csv")), "step,loss\n1,2\n");
  write_file_atomic(dir.file("empty.csv"), "");
  { CsvLog log(dir.file("empty.csv"), {"step"}, CsvMode::kAppend); }
  EXPECT_EQ(read_file(dir.file("empty.csv")), "step\n");
}

TEST(CsvLog, AppendWithOtherHeaderNamesBoth) {
  TempDir dir;
  const std::string path = dir.file("log.csv");
  write_file_atomic(path, "step,loss\n1,0.5\n");
  cyclone::testing::expect_error(
      [&] {
        CsvLog log(path, {"step", "loss", "lr"}, CsvMode::kAppend);
      },
      {path, "'step,loss'", "'step,loss,lr'"});
  EXPECT_EQ(read_file(path), "step,loss\n1,0.5\n");  // left untouched
}

TEST(CsvLog, AppendDropsRowsAfterCheckpoint) {
  TempDir dir;
  const std::string path = dir.file("log.csv");
  write_file_atomic(path, "step,loss\n100,0.9\n200,0.8\n250,0.7\n300,0.6\n");
  {
    CsvLog log(path, {"step", "loss"}, CsvMode::kAppend, 200.0);
    EXPECT_EQ(log.rows(), 2);
    EXPECT_EQ(read_file(path), "step,loss\n100,0.9\n200,0.8\n");  // rewritten at once
    log.row(std::vector<double>{300, 0.65});
  }
  EXPECT_EQ(read_file(path), "step,loss\n100,0.9\n200,0.8\n300,0.65\n");
  // No leftover temporary file beside it.
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(fs::path(path).parent_path()))
    ++files;
  EXPECT_EQ(files, 1);
}

TEST(CsvLog, AppendDropsTornLastLine) {
  TempDir dir;
  const std::string path = dir.file("log.csv");
  write_file_atomic(path, "step,loss\n1,0.9\n2,0.8\n3,0.");  // a crash mid-row
  {
    CsvLog log(path, {"step", "loss"}, CsvMode::kAppend);
    log.row(std::vector<double>{3, 0.7});
  }
  EXPECT_EQ(read_file(path), "step,loss\n1,0.9\n2,0.8\n3,0.7\n");
}

TEST(CsvLog, AppendKeepsQuotedNewlinesInOneRow) {
  TempDir dir;
  const std::string path = dir.file("log.csv");
  {
    CsvLog log(path, {"step", "note"});
    log.row(std::vector<std::string>{"1", "two\nlines"});
    log.row(std::vector<std::string>{"5", "later"});
  }
  { CsvLog log(path, {"step", "note"}, CsvMode::kAppend, 1.0); }
  EXPECT_EQ(read_file(path), "step,note\n1,\"two\nlines\"\n");
}

TEST(CsvLog, WrongRowWidth) {
  TempDir dir;
  const std::string path = dir.file("log.csv");
  CsvLog log(path, {"step", "loss"});
  cyclone::testing::expect_error(
      [&] {
        log.row(std::vector<double>{1, 2, 3});
      },
      {path, "3 cells", "2 col"});
  cyclone::testing::expect_error([&] { log.row(std::vector<std::string>{"1"}); },
                                 {path, "1 cells"});
}

TEST(CsvLog, OpenAndWriteErrorsNamePath) {
  TempDir dir;
  const std::string missing = dir.file("no/such/dir/log.csv");
  cyclone::testing::expect_error([&] { CsvLog log(missing, {"a"}); }, {missing, "No such file"});
  // A directory in the way: worded as write_file_atomic words it ("open failed: Is a directory").
  const std::string folder = dir.file("folder.csv");
  fs::create_directories(folder);
  cyclone::testing::expect_error([&] { CsvLog log(folder, {"a"}); },
                                 {folder, ": it is a directory, not a file"});
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full on this system";
  // /dev/full through a symlink: every write fails as on a full disk.
  const std::string link = dir.file("full.csv");
  fs::create_symlink("/dev/full", link);
  cyclone::testing::expect_error([&] { CsvLog log(link, {"a"}); }, {link, "No space left"});
}

}  // namespace
}  // namespace cyclone::train
