#include "cyclone/core/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "cyclone/core/error.h"
#include "cyclone/core/resource_limits.h"

namespace cyclone {

std::string errno_reason(int err) {
  std::string r = std::strerror(err);
  if (err == ENOSPC) r += " (the disk is full: free space or choose another directory)";
  if (err == EDQUOT) r += " (disk quota exceeded: free space or choose another directory)";
  r += limit_note(err);
  return r;
}

namespace {

// Closes fd on scope exit unless released.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// The file `path` leads to: itself, or through a chain of symlinks the file at its end, so that
// rewriting a linked file updates the file and keeps the link. Anything else at the end (a
// directory, a device such as /dev/null, a pipe) is refused: the rename would replace it, and as
// root that destroys /dev/null.
std::filesystem::path write_target(const std::string& path) {
  namespace fs = std::filesystem;
  fs::path p(path);
  for (int hops = 0;; ++hops) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) return p;  // new: open() reports the directory
      CYCLONE_THROW("cannot write ", path, ": ", errno_reason(errno));
    }
    const std::string via = p.string() == path ? "" : " (the symlink leads to " + p.string() + ")";
    if (S_ISREG(st.st_mode)) return p;
    CYCLONE_CHECK(!S_ISDIR(st.st_mode), "cannot write ", path, ": it is a directory, not a file",
                  via);
    CYCLONE_CHECK(S_ISLNK(st.st_mode), "cannot write ", path,
                  ": it is not a regular file (a device, pipe or socket)", via,
                  "; give the path of a file to create or replace");
    CYCLONE_CHECK(hops < 40, "cannot write ", path, ": too many levels of symbolic links");
    std::error_code ec;
    const fs::path link = fs::read_symlink(p, ec);
    if (ec) CYCLONE_THROW("cannot write ", path, ": ", ec.message());
    p = link.is_absolute() ? link : p.parent_path() / link;
  }
}

}  // namespace

void write_file_atomic(const std::string& path, std::string_view bytes) {
  namespace fs = std::filesystem;
  const fs::path target = write_target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  // Appended piece by piece: g++ 12 warns (-Wrestrict, falsely) on "." + std::string here.
  std::string name = ".";
  name += target.filename().string();
  name += ".tmp." + std::to_string(::getpid());
  const std::string tmp = (dir / name).string();
  auto fail = [&](const char* what, int err) {
    ::unlink(tmp.c_str());
    CYCLONE_THROW("cannot write ", path, ": ", what, " failed: ", errno_reason(err));
  };
  {
    Fd f;
    f.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f.fd < 0) fail("open", errno);
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(f.fd, bytes.data() + done, bytes.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail("write", errno);
      }
      done += static_cast<size_t>(n);
    }
    if (::fsync(f.fd) != 0) fail("fsync", errno);
    const int fd = f.fd;
    f.fd = -1;
    if (::close(fd) != 0) fail("close", errno);
  }
  if (::rename(tmp.c_str(), target.c_str()) != 0) fail("rename", errno);
  // Make the rename itself durable.
  Fd d;
  d.fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d.fd >= 0) ::fsync(d.fd);
}

void check_can_make_directories(const std::string& dir) {
  namespace fs = std::filesystem;
  fs::path p(dir);
  struct stat st {};
  while (!p.empty() && ::stat(p.c_str(), &st) != 0) {
    if (errno != ENOENT && errno != ENOTDIR)
      CYCLONE_THROW("cannot create the directory ", dir, ": ", errno_reason(errno));
    p = p.parent_path();
  }
  if (p.empty()) {
    p = ".";
    if (::stat(p.c_str(), &st) != 0)
      CYCLONE_THROW("cannot create the directory ", dir, ": ", errno_reason(errno));
  }
  const std::string which = p == fs::path(dir) ? "it" : p.string();
  CYCLONE_CHECK(S_ISDIR(st.st_mode), "cannot create the directory ", dir, ": ", which,
                " is a file, not a directory");
  if (::access(p.c_str(), W_OK | X_OK) != 0)
    CYCLONE_THROW("cannot create the directory ", dir, ": ", which, " is not writable (",
                  errno_reason(errno), ")");
}

void make_directories(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (!ec) return;
  check_can_make_directories(dir);  // the clearer reason, when it has one
  CYCLONE_THROW("cannot create the directory ", dir, ": ", errno_reason(ec.value()));
}

void check_can_write_file(const std::string& path) {
  const std::filesystem::path target = write_target(path);
  check_can_make_directories(target.has_parent_path() ? target.parent_path().string() : ".");
}

uint64_t file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    CYCLONE_THROW("cannot read ", path, ": ", std::strerror(errno));
  CYCLONE_CHECK(!S_ISDIR(st.st_mode), "cannot read ", path, ": it is a directory, not a file");
  CYCLONE_CHECK(S_ISREG(st.st_mode), "cannot read ", path, ": not a regular file");
  return static_cast<uint64_t>(st.st_size);
}

std::string read_file(const std::string& path, uint64_t max_bytes) {
  const uint64_t size = file_size(path);
  CYCLONE_CHECK(size <= max_bytes, "cannot read ", path, ": ", size, " bytes is more than the ",
                max_bytes, " allowed for this kind of file");
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) CYCLONE_THROW("cannot read ", path, ": ", errno_reason(errno));
  std::string out(size, '\0');
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::read(f.fd, out.data() + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) CYCLONE_THROW("cannot read ", path, ": ", std::strerror(errno));
    if (n == 0)
      CYCLONE_THROW("cannot read ", path, ": it shrank while being read (", done, " of ", size,
                    " bytes)");
    done += static_cast<size_t>(n);
  }
  return out;
}

std::string shell_quote(std::string_view path) {
  const bool plain = !path.empty() && std::all_of(path.begin(), path.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("_-./:=@%+,").find(c) != std::string_view::npos;
  });
  if (plain) return std::string(path);
  std::string out = "'";
  for (char c : path) {
    if (c == '\'')
      out += "'\\''";  // close the quotes, an escaped ', open them again
    else
      out += c;
  }
  return out + "'";
}

}  // namespace cyclone
