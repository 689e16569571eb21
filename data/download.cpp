#include "cyclone/data/download.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "cyclone/core/error.h"
#include "cyclone/core/file_util.h"
#include "cyclone/core/progress.h"
#include "cyclone/core/spelling.h"

namespace cyclone::data {
namespace {

std::string parent_dir(const std::string& path) {
  std::string d = std::filesystem::path(path).parent_path().string();
  return d.empty() ? "." : d;
}

// A file descriptor closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

void curl_init_once() {
  static std::once_flag once;
  static CURLcode rc = CURLE_OK;
  std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  CYCLONE_CHECK(rc == CURLE_OK, "cannot initialise libcurl: ", curl_easy_strerror(rc));
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

std::string to_hex(const unsigned char* d, unsigned n) {
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < n; ++i) {
    s += kHex[d[i] >> 4];
    s += kHex[d[i] & 15];
  }
  return s;
}

// Streaming MD5: feed() any number of times, then hex().
class Md5 {
 public:
  Md5() : ctx_(EVP_MD_CTX_new()) {
    CYCLONE_CHECK(ctx_ && EVP_DigestInit_ex(ctx_.get(), EVP_md5(), nullptr) == 1,
                  "cannot initialise OpenSSL MD5");
  }
  void feed(const void* p, size_t n) {
    CYCLONE_CHECK(EVP_DigestUpdate(ctx_.get(), p, n) == 1, "OpenSSL MD5 update failed");
  }
  std::string hex() {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    CYCLONE_CHECK(EVP_DigestFinal_ex(ctx_.get(), d, &n) == 1, "OpenSSL MD5 final failed");
    return to_hex(d, n);
  }

 private:
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx_;
};

std::string bytes_text(int64_t n) {
  const double v = static_cast<double>(n);
  char buf[32];
  if (n < 1024) return std::to_string(n) + " B";
  if (v < 1024.0 * 1024)
    std::snprintf(buf, sizeof buf, "%.1f KiB", v / 1024);
  else if (v < 1024.0 * 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.1f MiB", v / 1024 / 1024);
  else
    std::snprintf(buf, sizeof buf, "%.2f GiB", v / 1024 / 1024 / 1024);
  return buf;
}

// State of one transfer shared with libcurl's callbacks (which must not throw).
struct Transfer {
  int fd = -1;
  std::string part;
  int64_t offset = 0;     // bytes of the .part before this transfer (the Range start)
  int64_t written = 0;    // bytes written by this transfer
  int64_t expected = -1;  // f.size
  int64_t too_long = -1;  // the bytes received when they passed `expected`: stopped there
  bool started = false;   // the first body byte of the final response arrived
  int write_errno = 0;    // a failed write(2)/ftruncate(2): the reason
  int socket_errno = 0;   // a refused socket(2): libcurl only says "Couldn't connect"
  std::string bad_range;  // a 206 whose Content-Range does not start at `offset`
  int64_t content_range_start = -1;
  bool local = false;  // a file:// URL: curl honours the Range, with no status code (0)
  CURL* curl = nullptr;
  int progress_mode = -1;
  std::string label;
  std::optional<ProgressBar> bar;

  int64_t total() const {
    if (expected >= 0) return expected;
    curl_off_t cl = -1;
    curl_easy_getinfo(curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    return cl >= 0 ? offset + cl : -1;
  }
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string h(data, size * n);
  if (h.rfind("HTTP/", 0) == 0) t->content_range_start = -1;  // a new response (redirects)
  static const std::string kRange = "content-range:";
  if (h.size() > kRange.size()) {
    if (ascii_lower(h.substr(0, kRange.size())) == kRange) {
      const auto p = h.find_first_of("0123456789", kRange.size());
      if (p != std::string::npos) t->content_range_start = std::strtoll(h.c_str() + p, nullptr, 10);
    }
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  if (!t->started) {
    t->started = true;
    long code = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    if (t->offset > 0 && code == 206 && t->content_range_start != t->offset) {
      t->bad_range = "server answered a Range request for bytes " + std::to_string(t->offset) +
                     "- with bytes from " + std::to_string(t->content_range_start);
      return 0;
    }
    if (t->offset > 0 && code != 206 && !t->local) {  // no Range support: the whole file again
      if (::ftruncate(t->fd, 0) != 0 || ::lseek(t->fd, 0, SEEK_SET) != 0) {
        t->write_errno = errno;
        return 0;
      }
      t->offset = 0;
    }
    if (t->progress_mode != -2) {
      ProgressOptions po;
      po.mode = t->progress_mode;
      t->bar.emplace(t->label, t->total(), "B", po);
    }
  }
  // More than the published size is another file (or an error page): stop now, not at the end.
  const int64_t received = t->offset + t->written + static_cast<int64_t>(bytes);
  if (t->expected >= 0 && received > t->expected) {
    t->too_long = received;
    return 0;
  }
  size_t done = 0;
  while (done < bytes) {
    const ssize_t w = ::write(t->fd, data + done, bytes - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      t->write_errno = errno;
      return 0;
    }
    done += static_cast<size_t>(w);
  }
  t->written += static_cast<int64_t>(bytes);
  if (t->bar) t->bar->update(t->offset + t->written, t->written);
  return bytes;
}

// libcurl's own socket(2), keeping its errno: under ulimit -n libcurl reports a refused socket as
// "Couldn't connect to server" with no OS error, and the user looks for a network fault.
curl_socket_t open_socket(void* data, curlsocktype, curl_sockaddr* a) {
  const curl_socket_t s = ::socket(a->family, a->socktype, a->protocol);
  if (s == CURL_SOCKET_BAD) static_cast<Transfer*>(data)->socket_errno = errno;
  return s;
}

// Why a transfer failed, in words a person can act on.
std::string curl_reason(CURLcode rc, CURL* c, const Transfer& t, const char* errbuf,
                        const DownloadOptions& o) {
  long os_errno = 0, code = 0;
  curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  const std::string detail = errbuf[0] ? std::string(errbuf) : curl_easy_strerror(rc);
  if (rc == CURLE_COULDNT_CONNECT && t.socket_errno != 0)
    return "cannot open a network socket: " + errno_reason(t.socket_errno);
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return "cannot resolve the host name (DNS; offline or no route?): " + detail;
    case CURLE_COULDNT_CONNECT:
      if (os_errno == ECONNREFUSED) return "connection refused";
      if (os_errno == ENETUNREACH || os_errno == EHOSTUNREACH) return "no route to host";
      return "cannot connect: " + detail;
    case CURLE_OPERATION_TIMEDOUT: {
      curl_off_t connect_us = 0;
      curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connect_us);
      char buf[160];
      if (connect_us == 0)
        std::snprintf(buf, sizeof buf, "timeout: no connection within %g s",
                      o.connect_timeout_seconds);
      else
        std::snprintf(buf, sizeof buf, "timeout: stalled below 1 byte/s for %g s after %lld bytes",
                      o.stall_seconds, static_cast<long long>(t.offset + t.written));
      return buf;
    }
    case CURLE_HTTP_RETURNED_ERROR:
      return "HTTP " + std::to_string(code);
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING: {
      const int64_t total = t.expected;
      return "connection closed after " + std::to_string(t.offset + t.written) +
             (total >= 0 ? " of " + std::to_string(total) : std::string()) + " bytes (kept " +
             t.part + " to resume)";
    }
    default:
      return detail;
  }
}

enum class Outcome { kDone, kRetryMirror, kFatal };

}  // namespace

std::string md5_bytes(std::string_view bytes) {
  Md5 md5;
  md5.feed(bytes.data(), bytes.size());
  return md5.hex();
}

std::string md5_file(const std::string& path) {
  // O_NONBLOCK: opening a FIFO for reading would wait for a writer; the check below refuses it.
  Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  CYCLONE_CHECK(fd.get() >= 0, "cannot read ", path, " to checksum it: ", errno_reason(errno));
  struct stat st {};
  CYCLONE_CHECK(::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode), "cannot checksum ", path,
                ": not a regular file");
  Md5 md5;
  std::vector<char> buf(size_t{1} << 20);
  for (;;) {
    const ssize_t r = ::read(fd.get(), buf.data(), buf.size());
    if (r < 0 && errno == EINTR) continue;
    CYCLONE_CHECK(r >= 0, "cannot read ", path, " to checksum it: ", errno_reason(errno));
    if (r == 0) break;
    md5.feed(buf.data(), static_cast<size_t>(r));
  }
  return md5.hex();
}

namespace {

// Checks the finished .part (size, MD5) and renames it to dest. Returns an empty string on
// success, else the reason (the .part is removed: it is wrong, resuming it cannot help).
std::string verify_and_commit(const RemoteFile& f, const std::string& part,
                              const std::string& dest) {
  struct stat st {};
  if (::stat(part.c_str(), &st) != 0) return "cannot stat " + part + ": " + errno_reason(errno);
  const int64_t got = st.st_size;
  if (f.size >= 0 && got != f.size) {
    ::unlink(part.c_str());
    return "size mismatch: got " + std::to_string(got) + " bytes, expected " +
           std::to_string(f.size);
  }
  if (!f.md5.empty()) {
    const std::string md5 = md5_file(part);
    if (md5 != f.md5) {
      ::unlink(part.c_str());
      return "md5 mismatch: got " + md5 + ", expected " + f.md5;
    }
  }
  {
    Fd fd(::open(part.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0 || ::fsync(fd.get()) != 0)
      return "cannot flush " + part + ": " + errno_reason(errno);
  }
  if (::rename(part.c_str(), dest.c_str()) != 0)
    return "cannot rename " + part + " to " + dest + ": " + errno_reason(errno);
  Fd dir(::open(parent_dir(dest).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() >= 0) ::fsync(dir.get());
  return "";
}

// One attempt at one URL. `reason` gets why it failed.
Outcome try_url(const RemoteFile& f, const std::string& url, const std::string& dest,
                const DownloadOptions& o, std::string& reason) {
  const std::string part = dest + ".part";
  // A .part as long as the published size: a download that stopped just before the rename.
  struct stat st {};
  if (f.size >= 0 && ::stat(part.c_str(), &st) == 0 && st.st_size >= f.size) {
    if (st.st_size == f.size && verify_and_commit(f, part, dest).empty()) return Outcome::kDone;
    ::unlink(part.c_str());
  }
  for (int attempt = 0; attempt < 2; ++attempt) {  // a second one only after a 416
    Fd fd(::open(part.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (fd.get() < 0) {
      reason = "cannot create " + part + ": " + errno_reason(errno);
      return Outcome::kFatal;
    }
    Transfer t;
    t.fd = fd.get();
    t.part = part;
    t.offset = ::lseek(fd.get(), 0, SEEK_END);
    t.expected = f.size;
    t.local = url.rfind("file:", 0) == 0;
    t.progress_mode = o.progress_mode;
    t.label = o.label.empty() ? f.name : o.label;

    std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
    if (!curl) {
      reason = "cannot create a libcurl handle";
      return Outcome::kFatal;
    }
    CURL* c = curl.get();
    t.curl = c;
    char errbuf[CURL_ERROR_SIZE] = {0};
    const std::string range = std::to_string(t.offset) + "-";
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::max(1.0, o.connect_timeout_seconds * 1000)));
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
                     static_cast<long>(std::max(1.0, std::ceil(o.stall_seconds))));
    curl_easy_setopt(c, CURLOPT_USERAGENT, "cyclone-fetch/1 (libcurl)");
    // Dataset files are already compressed, or read compressed: no Accept-Encoding games, which
    // would also break byte ranges.
    if (t.offset > 0) curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &t);

    const auto t0 = std::chrono::steady_clock::now();
    const CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (rc == CURLE_OK && !t.started && t.offset > 0 && code == 200) {
      // An empty 200 answer to a Range request: the file is empty, drop what we had.
      if (::ftruncate(fd.get(), 0) != 0) t.write_errno = errno;
      t.offset = 0;
    }
    const int64_t have = t.offset + t.written;
    if (t.bar) {
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::string line = t.label + ": " + (rc == CURLE_OK ? "" : "stopped at ") + bytes_text(have);
      if (rc == CURLE_OK)
        line +=
            " in " + format_duration(secs) + " (" +
            bytes_text(secs > 0 ? static_cast<int64_t>(static_cast<double>(t.written) / secs) : 0) +
            "/s)";
      t.bar->finish(line);
    }
    if (t.write_errno != 0) {
      reason = "cannot write " + part + ": " + errno_reason(t.write_errno) +
               (t.write_errno == ENOSPC ? " (disk full)" : "");
      return Outcome::kFatal;
    }
    if (t.too_long >= 0) {
      fd.reset();
      ::unlink(part.c_str());  // not a prefix of the published file: resuming it cannot help
      reason = "size mismatch: received " + std::to_string(t.too_long) +
               " bytes, more than the expected " + std::to_string(f.size) + " (stopped there)";
      return Outcome::kRetryMirror;
    }
    if (!t.bad_range.empty()) {
      reason = t.bad_range;
      return Outcome::kRetryMirror;
    }
    if (rc == CURLE_HTTP_RETURNED_ERROR && code == 416 && t.offset > 0 && attempt == 0) {
      fd.reset();
      ::unlink(part.c_str());  // the .part is not a prefix of the file: start over
      continue;
    }
    if (rc != CURLE_OK) {
      reason = curl_reason(rc, c, t, errbuf, o);
      if (have == 0) ::unlink(part.c_str());  // nothing to resume: leave no empty .part behind
      return Outcome::kRetryMirror;
    }
    fd.reset();
    reason = verify_and_commit(f, part, dest);
    return reason.empty() ? Outcome::kDone : Outcome::kRetryMirror;
  }
  reason = "HTTP 416 (range not satisfiable) even from byte 0";
  return Outcome::kRetryMirror;
}

}  // namespace

void download_file(const RemoteFile& f, const std::string& dest, const DownloadOptions& options) {
  const std::string dir = parent_dir(dest);
  CYCLONE_CHECK(!f.urls.empty(), "cannot download ", f.name, ": no URL is known for it; put the ",
                "file in ", dir, " by hand");
  curl_init_once();
  std::string tried;
  for (const std::string& url : f.urls) {
    std::string reason;
    const Outcome out = try_url(f, url, dest, options, reason);
    if (out == Outcome::kDone) return;
    if (!tried.empty()) tried += "; ";
    tried += url + ": " + reason;
    if (out == Outcome::kFatal) break;
  }
  CYCLONE_THROW("cannot download ", f.name, " (", tried, "); fetch ", f.urls.front(),
                " by hand and put it in ", dir);
}

DirLock::DirLock(const std::string& dir, const std::string& what) {
  // The directory itself is locked: a lock file would stay behind in every data directory (and
  // in one a failed fetch created, which could then not be removed).
  const std::string& path = dir;
  fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  CYCLONE_CHECK(fd_ >= 0, "cannot open the data directory ", dir,
                " to lock it: ", errno_reason(errno),
                "; make it an existing, readable directory (or pick another data directory)");
  if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
  if (errno != EWOULDBLOCK) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    CYCLONE_THROW("cannot lock ", path, ": ", errno_reason(err));
  }
  std::fprintf(stderr, "waiting for another process fetching %s in %s ...\n", what.c_str(),
               dir.c_str());
  std::fflush(stderr);
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    CYCLONE_THROW("cannot lock ", path, ": ", errno_reason(err));
  }
}

DirLock::~DirLock() {
  if (fd_ >= 0) {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
}

}  // namespace cyclone::data
