// The downloader against a local HTTP server (tests/fetch/http_server.py, run as a child process):
// whole and resumed transfers, every failure a one-line Error naming the URL and the reason, MD5
// against known vectors, and the directory lock between processes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "cyclone/core/error.h"
#include "cyclone/data/download.h"

namespace cyclone::testing {
namespace {

namespace fs = std::filesystem;
using data::DirLock;
using data::download_file;
using data::DownloadOptions;
using data::md5_bytes;
using data::md5_file;
using data::RemoteFile;

fs::path server_script() {
  return fs::path(__FILE__).parent_path().parent_path() / "fetch" / "http_server.py";
}

// python3 on PATH, or empty.
std::string find_python3() {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    const std::string p = (fs::path(dir.empty() ? "." : dir) / "python3").string();
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << "cannot write " << path;
}

// Deterministic bytes that do not repeat within a file (so an offset error changes the MD5).
std::string make_bytes(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s[i] = static_cast<char>(x & 0xff);
  }
  return s;
}

// The message of the Error `fn` throws (a test failure when it throws nothing).
template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.message();
  }
  ADD_FAILURE() << "expected a cyclone::Error";
  return "";
}

DownloadOptions quiet() {
  DownloadOptions o;
  o.progress_mode = -2;
  o.connect_timeout_seconds = 3;
  o.stall_seconds = 5;
  return o;
}

class DownloadTest : public ::testing::Test {
 protected:
  void TearDown() override { stop(); }

  // Starts the server on `root_` (stopping any running one) with extra arguments.
  void serve(const std::vector<std::string>& extra = {}) {
    stop();
    const std::string python = find_python3();
    ASSERT_FALSE(python.empty())
        << "python3 is not on PATH; the downloader tests need it for their local HTTP server "
           "(scripts/install_deps.sh installs it)";
    ASSERT_TRUE(fs::exists(server_script())) << "missing " << server_script();
    log_ = out_.file("server.log");
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    std::vector<std::string> args = {python, server_script().string(), root_.path().string()};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      const int logfd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (logfd >= 0) ::dup2(logfd, 2);
      ::close(fds[0]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(python.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    out_fd_ = fds[0];
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (line.find('\n') == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{out_fd_, POLLIN, 0};
      ASSERT_GT(::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count()))), 0)
          << "the test HTTP server printed no port within 10 s; its log: " << slurp(log_);
      char buf[64];
      const ssize_t r = ::read(out_fd_, buf, sizeof buf);
      ASSERT_GT(r, 0) << "the test HTTP server exited before printing its port; its log: "
                      << slurp(log_);
      line.append(buf, static_cast<size_t>(r));
    }
    port_ = std::stoi(line);
    ASSERT_GT(port_, 0);
  }

  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    if (out_fd_ >= 0) ::close(out_fd_);
    out_fd_ = -1;
  }

  std::string url(const std::string& name) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/" + name;
  }
  // Puts `bytes` on the server as `name` and describes it as published.
  RemoteFile publish(const std::string& name, const std::string& bytes) {
    spit(root_.file(name), bytes);
    RemoteFile f;
    f.name = name;
    f.urls = {url(name)};
    f.md5 = md5_bytes(bytes);
    f.size = static_cast<int64_t>(bytes.size());
    return f;
  }
  std::string server_log() const { return slurp(log_); }

  TempDir root_;  // what the server serves
  TempDir out_;   // where downloads land (and the server log)
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = 0;
  std::string log_;
};

TEST_F(DownloadTest, DownloadsWholeFile) {
  ASSERT_NO_FATAL_FAILURE(serve());
  const std::string bytes = make_bytes(300'000, 1);
  const RemoteFile f = publish("a.bin", bytes);
  const std::string dest = out_.file("a.bin");
  download_file(f, dest, quiet());
  EXPECT_EQ(slurp(dest), bytes);
  EXPECT_EQ(md5_file(dest), f.md5);
  EXPECT_FALSE(fs::exists(dest + ".part"));
}

TEST_F(DownloadTest, ResumesAfterDroppedConnection) {
  ASSERT_NO_FATAL_FAILURE(serve({"--fail-once", "/b.bin:100000"}));
  const std::string bytes = make_bytes(300'000, 2);
  const RemoteFile f = publish("b.bin", bytes);
  const std::string dest = out_.file("b.bin");
  const std::string msg = error_of([&] { download_file(f, dest, quiet()); });
  EXPECT_NE(msg.find(f.urls[0]), std::string::npos) << msg;
  EXPECT_NE(msg.find("by hand"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dest));
  ASSERT_TRUE(fs::exists(dest + ".part"));
  const auto kept = fs::file_size(dest + ".part");
  EXPECT_GT(kept, 0u);
  EXPECT_LT(kept, bytes.size());

  download_file(f, dest, quiet());
  EXPECT_EQ(slurp(dest), bytes);
  EXPECT_EQ(md5_file(dest), f.md5);
  EXPECT_FALSE(fs::exists(dest + ".part"));
  const std::string log = server_log();
  EXPECT_NE(log.find("GET /b.bin range=bytes=" + std::to_string(kept) + "-"), std::string::npos)
      << log;
}

TEST_F(DownloadTest, ResumesExistingPartFile) {
  ASSERT_NO_FATAL_FAILURE(serve());
  const std::string bytes = make_bytes(200'000, 3);
  const RemoteFile f = publish("c.bin", bytes);
  const std::string dest = out_.file("c.bin");
  spit(dest + ".part", bytes.substr(0, 12345));
  download_file(f, dest, quiet());
  EXPECT_EQ(slurp(dest), bytes);
  EXPECT_FALSE(fs::exists(dest + ".part"));
  const std::string log = server_log();
  EXPECT_NE(log.find("GET /c.bin range=bytes=12345-"), std::string::npos) << log;
  EXPECT_EQ(log.find("range=-"), std::string::npos) << "the whole file was fetched again\n" << log;
}

// A file:// mirror (a manifest on a machine without internet): curl serves the Range with no
// status code, so the .part must be continued, not cut back as if the whole file came again.
TEST_F(DownloadTest, ResumesAPartFileFromAFileUrl) {
  const std::string bytes = make_bytes(200'000, 5);
  RemoteFile f = publish("local.bin", bytes);
  f.urls = {"file://" + root_.file("local.bin")};
  const std::string dest = out_.file("local.bin");
  spit(dest + ".part", bytes.substr(0, 1000));
  download_file(f, dest, quiet());
  EXPECT_EQ(slurp(dest), bytes);
  EXPECT_FALSE(fs::exists(dest + ".part"));
}

TEST_F(DownloadTest, ServerWithoutRangeSupportStartsOver) {
  ASSERT_NO_FATAL_FAILURE(serve({"--no-range"}));
  const std::string bytes = make_bytes(100'000, 10);
  const RemoteFile f = publish("n.bin", bytes);
  const std::string dest = out_.file("n.bin");
  spit(dest + ".part", std::string(777, 'x'));  // would corrupt the file if appended to
  download_file(f, dest, quiet());
  EXPECT_EQ(slurp(dest), bytes);
  EXPECT_NE(server_log().find("GET /n.bin range=bytes=777-"), std::string::npos) << server_log();
}

TEST_F(DownloadTest, CorruptPartFailsThenNextCallStartsClean) {
  ASSERT_NO_FATAL_FAILURE(serve());
  const std::string bytes = make_bytes(100'000, 11);
  const RemoteFile f = publish("p.bin", bytes);
  const std::string dest = out_.file("p.bin");
  spit(dest + ".part", std::string(777, 'x'));  // not a prefix of the file: the MD5 catches it
  const std::string msg = error_of([&] { download_file(f, dest, quiet()); });
  EXPECT_NE(msg.find("md5"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dest + ".part"));
  download_file(f, dest, quiet());
  EXPECT_EQ(slurp(dest), bytes);
}

TEST_F(DownloadTest, CompletePartFileIsOnlyVerified) {
  ASSERT_NO_FATAL_FAILURE(serve());
  const std::string bytes = make_bytes(5'000, 4);
  const RemoteFile f = publish("d.bin", bytes);
  const std::string dest = out_.file("d.bin");
  spit(dest + ".part", bytes);  // stopped between the transfer and the rename
  download_file(f, dest, quiet());
  EXPECT_EQ(slurp(dest), bytes);
  EXPECT_FALSE(fs::exists(dest + ".part"));
}

TEST_F(DownloadTest, Md5MismatchRemovesPart) {
  ASSERT_NO_FATAL_FAILURE(serve());
  RemoteFile f = publish("e.bin", make_bytes(10'000, 5));
  f.md5 = std::string(32, '0');
  const std::string dest = out_.file("e.bin");
  const std::string msg = error_of([&] { download_file(f, dest, quiet()); });
  EXPECT_NE(msg.find("md5"), std::string::npos) << msg;
  EXPECT_NE(msg.find(f.urls[0]), std::string::npos) << msg;
  EXPECT_NE(msg.find("by hand and put it in " + out_.path().string()), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dest));
  EXPECT_FALSE(fs::exists(dest + ".part"));
}

TEST_F(DownloadTest, SizeMismatchRemovesPart) {
  ASSERT_NO_FATAL_FAILURE(serve());
  RemoteFile f = publish("f.bin", make_bytes(10'000, 6));
  f.size = 10'001;
  const std::string dest = out_.file("f.bin");
  const std::string msg = error_of([&] { download_file(f, dest, quiet()); });
  EXPECT_NE(msg.find("got 10000 bytes, expected 10001"), std::string::npos) << msg;
  EXPECT_NE(msg.find(f.urls[0]), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dest));
  EXPECT_FALSE(fs::exists(dest + ".part"));
}

TEST_F(DownloadTest, Http404NamesStatusAndUrl) {
  ASSERT_NO_FATAL_FAILURE(serve());
  RemoteFile f;
  f.name = "missing.bin";
  f.urls = {url("missing.bin")};
  f.md5 = std::string(32, '0');
  const std::string msg = error_of([&] { download_file(f, out_.file("missing.bin"), quiet()); });
  EXPECT_NE(msg.find("HTTP 404"), std::string::npos) << msg;
  EXPECT_NE(msg.find(f.urls[0]), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line: " << msg;
  EXPECT_FALSE(fs::exists(out_.file("missing.bin")));
}

TEST_F(DownloadTest, ConnectionRefusedFailsFast) {
  // A port that was just free: bind an ephemeral one, then close it.
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(s, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const int port = ntohs(a.sin_port);
  ::close(s);
  RemoteFile f;
  f.name = "x.bin";
  f.urls = {"http://127.0.0.1:" + std::to_string(port) + "/x.bin"};
  f.md5 = std::string(32, '0');
  const auto t0 = std::chrono::steady_clock::now();
  const std::string msg = error_of([&] { download_file(f, out_.file("x.bin"), quiet()); });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(secs, 5.0);
  EXPECT_NE(msg.find("refused"), std::string::npos) << msg;
  EXPECT_NE(msg.find(f.urls[0]), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(out_.file("x.bin.part"))) << "an empty .part was left behind";
}

TEST_F(DownloadTest, TriesMirrorsInTurn) {
  ASSERT_NO_FATAL_FAILURE(serve());
  const std::string bytes = make_bytes(50'000, 7);
  RemoteFile f = publish("g.bin", bytes);
  f.urls = {url("gone/g.bin"), url("g.bin")};
  const std::string dest = out_.file("g.bin");
  download_file(f, dest, quiet());
  EXPECT_EQ(slurp(dest), bytes);
  const std::string log = server_log();
  EXPECT_NE(log.find("GET /gone/g.bin"), std::string::npos) << log;
  EXPECT_NE(log.find("GET /g.bin"), std::string::npos) << log;
}

TEST_F(DownloadTest, AllMirrorsFailingAreAllNamed) {
  ASSERT_NO_FATAL_FAILURE(serve());
  RemoteFile f;
  f.name = "h.bin";
  f.urls = {url("one/h.bin"), url("two/h.bin")};
  const std::string msg = error_of([&] { download_file(f, out_.file("h.bin"), quiet()); });
  EXPECT_NE(msg.find(f.urls[0]), std::string::npos) << msg;
  EXPECT_NE(msg.find(f.urls[1]), std::string::npos) << msg;
  EXPECT_NE(msg.find("fetch " + f.urls[0] + " by hand"), std::string::npos) << msg;
}

TEST_F(DownloadTest, UnwritableDestinationNamesPath) {
  ASSERT_NO_FATAL_FAILURE(serve());
  const RemoteFile f = publish("i.bin", make_bytes(1'000, 8));
  const std::string dest = out_.file("no_such_dir/i.bin");
  const std::string msg = error_of([&] { download_file(f, dest, quiet()); });
  EXPECT_NE(msg.find(dest + ".part"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dest));
}

TEST_F(DownloadTest, Md5KnownVectors) {
  EXPECT_EQ(md5_bytes(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(md5_bytes("abc"), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(md5_bytes("The quick brown fox jumps over the lazy dog"),
            "9e107d9d372bb6826bd81d3542a419d6");
  TempDir dir;
  spit(dir.file("abc"), "abc");
  EXPECT_EQ(md5_file(dir.file("abc")), "900150983cd24fb0d6963f7d28e17f72");
  spit(dir.file("empty"), "");
  EXPECT_EQ(md5_file(dir.file("empty")), "d41d8cd98f00b204e9800998ecf8427e");
  // Across the 1 MiB read chunks.
  const std::string big = make_bytes((size_t{3} << 20) + 17, 9);
  spit(dir.file("big"), big);
  EXPECT_EQ(md5_file(dir.file("big")), md5_bytes(big));
  const std::string msg = error_of([&] { md5_file(dir.file("nope")); });
  EXPECT_NE(msg.find(dir.file("nope")), std::string::npos) << msg;
}

TEST_F(DownloadTest, DirLockSecondProcessWaits) {
  TempDir dir, scratch;
  const std::string child_err = scratch.file("child_stderr");
  std::optional<DirLock> lock;
  lock.emplace(dir.path().string(), "toyset");
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    const int errfd = ::open(child_err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (errfd >= 0) ::dup2(errfd, 2);
    try {
      DirLock second(dir.path().string(), "toyset");
      const char c = 'L';
      if (::write(fds[1], &c, 1) != 1) ::_exit(3);
    } catch (...) {
      ::_exit(2);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  pollfd p{fds[0], POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 400), 0) << "the child took the lock while the parent held it";
  lock.reset();
  EXPECT_EQ(::poll(&p, 1, 5000), 1) << "the child did not get the lock after the parent let go";
  char c = 0;
  EXPECT_EQ(::read(fds[0], &c, 1), 1);
  EXPECT_EQ(c, 'L');
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  const std::string err = slurp(child_err);
  EXPECT_NE(err.find("waiting for another process fetching toyset in " + dir.path().string()),
            std::string::npos)
      << err;
}

TEST_F(DownloadTest, DirLockMissingDirectoryIsAnError) {
  TempDir dir;
  const std::string missing = dir.file("not_here");
  const std::string msg = error_of([&] { DirLock lock(missing, "toyset"); });
  EXPECT_NE(msg.find(missing), std::string::npos) << msg;
}

}  // namespace
}  // namespace cyclone::testing
