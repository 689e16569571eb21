// TensorBoard event files: CRC-32C against published vectors, and the records parsed back by an
// independent reader (TFRecord framing + the protobuf wire format) written here from the specs.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "cyclone/core/file_util.h"
#include "cyclone/train/tensorboard.h"
#include "event_reader.h"

namespace cyclone::train {
namespace {

namespace fs = std::filesystem;

using ::cyclone::testing::TempDir;
using event_reader::read_events;

TEST(TensorBoardCrc, KnownVectors) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  const std::string zeros(32, '\0'), ones(32, '\xff');
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones.data(), ones.size()), 0x62A8AB43u);  // RFC 3720 B.4
  std::string inc(32, '\0');
  for (int i = 0; i < 32; ++i) inc[i] = char(i);
  EXPECT_EQ(crc32c(inc.data(), inc.size()), 0x46DD794Eu);
  EXPECT_EQ(crc32c("", 0), 0u);
}

TEST(TensorBoardCrc, MaskRotatesAndOffsets) {
  const uint32_t c = 0xE3069283u;
  EXPECT_EQ(masked_crc32c("123456789", 9), ((c >> 15) | (c << 17)) + 0xA282EAD8u);
}

TEST(TensorBoardWriter, FileNameAndVersionRecord) {
  TempDir dir;
  const std::string log_dir = dir.path().string() + "/runs/a";  // parents created
  TensorBoardWriter w(log_dir);
  const std::string name = fs::path(w.path()).filename().string();
  EXPECT_EQ(fs::path(w.path()).parent_path(), fs::path(log_dir));
  EXPECT_EQ(name.rfind("events.out.tfevents.", 0), 0u) << name;
  // Appended piecewise: `"." + std::to_string(...)` trips a GCC 12 -Wrestrict false positive.
  std::string pid = ".";
  pid += std::to_string(::getpid());
  pid += ".";
  EXPECT_NE(name.find(pid), std::string::npos) << name;
  // The version record is on disk before any scalar, so TensorBoard lists the run at once.
  const auto events = read_events(w.path());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  EXPECT_NEAR(events[0].wall_time, double(::time(nullptr)), 5.0);
  // A second writer in the same second gets its own file.
  TensorBoardWriter w2(log_dir);
  EXPECT_NE(w.path(), w2.path());
}

// TensorBoard reads a folder's files in name order (a restart marker acts on those before it): a
// new file sorts after the others, even a later-dated one or one of a higher counter or pid.
TEST(TensorBoardWriter, NewFileSortsAfterTheFolderOthers) {
  TempDir dir;
  const std::string d = dir.path().string();
  const long long later = static_cast<long long>(::time(nullptr)) + 5;
  const std::string planted = d + "/events.out.tfevents." + std::to_string(later) + ".zz.99999.9";
  write_file_atomic(planted, "");
  TensorBoardWriter a(d);
  EXPECT_GT(a.path(), planted);
  std::vector<std::string> paths = {a.path()};
  for (int i = 0; i < 11; ++i) paths.push_back(TensorBoardWriter(d).path());  // ".10" < ".9"
  for (size_t i = 1; i < paths.size(); ++i) EXPECT_GT(paths[i], paths[i - 1]) << i;
}

TEST(TensorBoardWriter, ScalarsRoundTrip) {
  TempDir dir;
  std::string path;
  {
    TensorBoardWriter w(dir.path().string());
    path = w.path();
    w.add_scalar("loss/train", 0.5, 0, 1700000000.25);
    w.add_scalar("loss/train", 0.1 + 1e-12, 7, 1700000001.5);
    w.add_scalars(8, {{"lr", 1e-3}, {"acc", 0.875}}, 1700000002.0);
    w.add_scalar("nan", std::nan(""), 9, 1700000003.0);
    w.add_scalar("inf", -std::numeric_limits<double>::infinity(), 10, 1700000004.0);
    w.add_text("notes", "hello, *world*", 11, 1700000005.0);
    w.add_scalars(12, {});  // nothing to log: no event
  }                         // the destructor flushes
  const auto ev = read_events(path);
  ASSERT_EQ(ev.size(), 7u);
  EXPECT_EQ(ev[1].wall_time, 1700000000.25);
  EXPECT_EQ(ev[1].step, 0);
  ASSERT_EQ(ev[1].scalars.size(), 1u);
  EXPECT_EQ(ev[1].scalars[0].first, "loss/train");
  EXPECT_EQ(ev[1].scalars[0].second, 0.5f);
  EXPECT_EQ(ev[2].step, 7);
  EXPECT_EQ(ev[2].scalars[0].second, float(0.1 + 1e-12));
  ASSERT_EQ(ev[3].scalars.size(), 2u);
  EXPECT_EQ(ev[3].scalars[0], (std::pair<std::string, float>("lr", 1e-3f)));
  EXPECT_EQ(ev[3].scalars[1], (std::pair<std::string, float>("acc", 0.875f)));
  EXPECT_TRUE(std::isnan(ev[4].scalars[0].second));
  EXPECT_EQ(ev[5].scalars[0].second, -std::numeric_limits<float>::infinity());
  ASSERT_EQ(ev[6].texts.size(), 1u);
  EXPECT_EQ(ev[6].texts[0], "hello, *world*");
  EXPECT_EQ(ev[6].wall_time, 1700000005.0);
}

// A restart marker as PyTorch's SummaryWriter(purge_step=) writes it: Event{step, session_log:
// START}, the record TensorBoard's reader purges the earlier files' later steps on.
TEST(TensorBoardWriter, PurgeFromWritesASessionStart) {
  TempDir dir;
  TensorBoardWriter w(dir.path().string());
  w.purge_from(17, 1700000000.5);
  w.add_scalar("loss", 0.25, 17, 1700000001.0);
  w.flush();
  const auto ev = read_events(w.path());
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_FALSE(ev[0].session_start);
  EXPECT_TRUE(ev[1].session_start);
  EXPECT_EQ(ev[1].step, 17);
  EXPECT_EQ(ev[1].wall_time, 1700000000.5);
  EXPECT_TRUE(ev[1].scalars.empty());
  EXPECT_FALSE(ev[2].session_start);
  EXPECT_EQ(ev[2].scalars.size(), 1u);
}

TEST(TensorBoardWriter, VarintStepsNegativeAndLarge) {
  TempDir dir;
  TensorBoardWriter w(dir.path().string());
  const std::vector<int64_t> steps = {0,
                                      1,
                                      127,
                                      128,
                                      300,
                                      int64_t(1) << 40,
                                      std::numeric_limits<int64_t>::max(),
                                      -1,
                                      std::numeric_limits<int64_t>::min()};
  for (int64_t s : steps) w.add_scalar("s", 1.0, s, 1.0);
  w.flush();
  const auto ev = read_events(w.path());
  ASSERT_EQ(ev.size(), steps.size() + 1);
  for (size_t i = 0; i < steps.size(); ++i) EXPECT_EQ(ev[i + 1].step, steps[i]);
}

TEST(TensorBoardWriter, WallTimeDefaultsToNow) {
  TempDir dir;
  TensorBoardWriter w(dir.path().string());
  w.add_scalar("x", 2.0, 3);
  w.flush();
  const auto ev = read_events(w.path());
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_NEAR(ev[1].wall_time, double(::time(nullptr)), 5.0);
  EXPECT_NE(ev[1].wall_time, std::floor(ev[1].wall_time)) << "sub-second resolution expected";
}

TEST(TensorBoardWriter, UnusableDirectoryNamesPath) {
  TempDir dir;
  const std::string file = dir.path().string() + "/plain_file";
  write_file_atomic(file, "x");
  testing::expect_error([&] { TensorBoardWriter w(file + "/logs"); }, {file + "/logs"});
}

// The file system refuses the writes (as a full disk would): RLIMIT_FSIZE makes write() fail
// with EFBIG even for root, where permission bits would not.
TEST(TensorBoardWriter, WriteFailureThrowsNamingPath) {
  TempDir dir;
  TensorBoardWriter w(dir.path().string());
  const std::string path = w.path();
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto* old_handler = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = 200;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  bool threw = false;
  try {
    for (int i = 0; i < 100000; ++i) w.add_scalar("a/long/enough/tag", i, i, 1.0);
    w.flush();
  } catch (const Error& e) {
    threw = true;
    EXPECT_NE(e.message().find(path), std::string::npos) << e.message();
    EXPECT_NE(e.message().find(std::strerror(EFBIG)), std::string::npos) << e.message();
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(threw);
  // Later calls keep failing with the first reason instead of appending after half a record.
  testing::expect_error([&] { w.add_scalar("b", 1, 1); }, {path, "earlier write failed"});
  testing::expect_error([&] { w.flush(); }, {path});
}

TEST(TensorBoardWriter, FailedCreationLeavesNoTornFile) {
  TempDir dir;
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto* old_handler = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit tiny = old;
  tiny.rlim_cur = 10;  // less than the version record
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &tiny), 0);
  bool threw = false;
  try {
    TensorBoardWriter w(dir.path().string());
  } catch (const Error& e) {
    threw = true;
    EXPECT_NE(e.message().find(dir.path().string() + "/events.out.tfevents."), std::string::npos)
        << e.message();
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(threw);
  EXPECT_TRUE(fs::is_empty(dir.path().string()));
}

// A full disk: the writer's descriptor (found through /proc/self/fd) is pointed at /dev/full,
// where every write fails with ENOSPC.
TEST(TensorBoardWriter, DiskFullThrowsNamingPath) {
  if (!fs::exists("/dev/full") || !fs::exists("/proc/self/fd"))
    GTEST_SKIP() << "needs /dev/full and /proc/self/fd";
  TempDir dir;
  TensorBoardWriter w(dir.path().string());
  int fd = -1;
  for (const auto& entry : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    if (fs::read_symlink(entry.path(), ec) == fs::path(w.path()))
      fd = std::stoi(entry.path().filename().string());
  }
  ASSERT_GE(fd, 0) << "the writer's descriptor was not found";
  const int full = ::open("/dev/full", O_WRONLY);
  ASSERT_GE(full, 0);
  ASSERT_EQ(::dup2(full, fd), fd);
  ::close(full);
  w.add_scalar("loss", 1.0, 1);
  testing::expect_error([&] { w.flush(); }, {w.path(), std::strerror(ENOSPC), "disk is full"});
}

}  // namespace
}  // namespace cyclone::train
