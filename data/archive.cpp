#include "cyclone/data/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string_view>
#include <system_error>

#include "cyclone/core/error.h"
#include "cyclone/core/file_util.h"

namespace cyclone::data {
namespace {

namespace fs = std::filesystem;

struct ArchiveCloser {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveCloser>;

std::string reason(struct archive* a) {
  const char* s = archive_error_string(a);
  return s ? s : "unknown libarchive error";
}

ArchivePtr open_archive(const std::string& path) {
  ArchivePtr a(archive_read_new());
  CYCLONE_CHECK(a != nullptr, "archive ", path, ": cannot allocate a libarchive reader");
  archive_read_support_filter_all(a.get());
  // Tar only (ustar, GNU, pax): the datasets publish tarballs, and every extra format reader is
  // more untrusted-input parsing for no use.
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK) {
    CYCLONE_THROW("archive ", path, ": cannot open: ", reason(a.get()));
  }
  return a;
}

// The next header, or nullptr at the end; a damaged or truncated archive is an Error.
struct archive_entry* next_entry(struct archive* a, const std::string& path) {
  struct archive_entry* entry = nullptr;
  const int r = archive_read_next_header(a, &entry);
  if (r == ARCHIVE_EOF) return nullptr;
  // ARCHIVE_WARN (e.g. an unknown pax keyword) still yields a usable header; the checks below
  // decide whether the member is acceptable.
  if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
    CYCLONE_THROW("archive ", path, ": damaged or truncated: ", reason(a));
  }
  return entry;
}

std::string base_name(std::string_view member) {
  while (!member.empty() && member.back() == '/') member.remove_suffix(1);
  const size_t slash = member.rfind('/');
  return std::string(slash == std::string_view::npos ? member : member.substr(slash + 1));
}

// Refuses any member that could write outside the destination or is not plain data. Returns the
// member's name.
std::string vet_member(struct archive_entry* entry, const std::string& path,
                       uint64_t max_member_bytes) {
  const char* raw = archive_entry_pathname(entry);
  CYCLONE_CHECK(raw != nullptr && raw[0] != '\0', "archive ", path,
                ": a member has no usable name (empty or not convertible); archive not trusted");
  const std::string name(raw);
  CYCLONE_CHECK(name.find('\0') == std::string::npos && name[0] != '/', "archive ", path,
                ": member \"", name, "\" has an absolute path; archive not trusted");
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    CYCLONE_CHECK(name.compare(start, end - start, "..") != 0, "archive ", path, ": member \"",
                  name, "\" has a \"..\" component; archive not trusted");
    start = end + 1;
  }
  CYCLONE_CHECK(archive_entry_hardlink(entry) == nullptr, "archive ", path, ": member \"", name,
                "\" is a hard link (to \"", archive_entry_hardlink(entry),
                "\"); archive not trusted");
  const char* symlink = archive_entry_symlink(entry);
  CYCLONE_CHECK(symlink == nullptr && archive_entry_filetype(entry) != AE_IFLNK, "archive ", path,
                ": member \"", name, "\" is a symbolic link",
                symlink ? std::string(" (to \"") + symlink + "\")" : std::string(),
                "; archive not trusted");
  const auto type = archive_entry_filetype(entry);
  CYCLONE_CHECK(type == AE_IFREG || type == AE_IFDIR, "archive ", path, ": member \"", name,
                "\" is a ",
                type == AE_IFCHR    ? "character device"
                : type == AE_IFBLK  ? "block device"
                : type == AE_IFIFO  ? "fifo"
                : type == AE_IFSOCK ? "socket"
                                    : "special file",
                "; archive not trusted");
  if (type == AE_IFREG) {
    const int64_t size = archive_entry_size_is_set(entry) ? archive_entry_size(entry) : 0;
    CYCLONE_CHECK(size >= 0 && static_cast<uint64_t>(size) <= max_member_bytes, "archive ", path,
                  ": member \"", name, "\" claims ", size, " bytes, more than the limit of ",
                  max_member_bytes);
  }
  return name;
}

// Removes the temporary directory however extraction ends.
struct TempDirGuard {
  fs::path path;
  ~TempDirGuard() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

struct FdCloser {
  int fd = -1;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

// Copies the current member's data to a new file `out` (which must not exist), stopping at
// `limit` bytes. Returns the member's size as written.
uint64_t write_member(struct archive* a, const std::string& archive_path, const std::string& name,
                      const std::string& out, int64_t declared, uint64_t limit) {
  FdCloser f{::open(out.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644)};
  CYCLONE_CHECK(f.fd >= 0, "cannot create ", out, ": ", errno_reason(errno));
  uint64_t end = 0;
  for (;;) {
    const void* buf = nullptr;
    size_t len = 0;
    la_int64_t offset = 0;
    const int r = archive_read_data_block(a, &buf, &len, &offset);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      CYCLONE_THROW("archive ", archive_path, ": damaged or truncated in member \"", name,
                    "\": ", reason(a));
    }
    CYCLONE_CHECK(offset >= 0 && static_cast<uint64_t>(offset) <= limit &&
                      len <= limit - static_cast<uint64_t>(offset),
                  "archive ", archive_path, ": member \"", name, "\" holds more than ", limit,
                  " bytes");
    // pwrite at the block's offset: sparse members come as blocks with gaps between them.
    const char* p = static_cast<const char*>(buf);
    size_t done = 0;
    while (done < len) {
      const ssize_t w = ::pwrite(f.fd, p + done, len - done, offset + static_cast<off_t>(done));
      if (w < 0 && errno == EINTR) continue;
      CYCLONE_CHECK(w > 0, "cannot write ", out, ": ", w < 0 ? errno_reason(errno) : "no progress");
      done += static_cast<size_t>(w);
    }
    end = std::max(end, static_cast<uint64_t>(offset) + len);
  }
  const uint64_t size = declared >= 0 ? static_cast<uint64_t>(declared) : end;
  CYCLONE_CHECK(end <= size, "archive ", archive_path, ": member \"", name, "\" holds ", end,
                " bytes, more than the ", size, " its header declares");
  CYCLONE_CHECK(::ftruncate(f.fd, static_cast<off_t>(size)) == 0, "cannot write ", out, ": ",
                errno_reason(errno));
  CYCLONE_CHECK(::fsync(f.fd) == 0, "cannot write ", out, ": ", errno_reason(errno));
  const int fd = f.fd;
  f.fd = -1;
  CYCLONE_CHECK(::close(fd) == 0, "cannot write ", out, ": ", errno_reason(errno));
  return size;
}

void fsync_dir(const fs::path& dir) {
  FdCloser d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd >= 0) ::fsync(d.fd);  // best effort: some filesystems refuse fsync on directories
}

}  // namespace

std::vector<std::string> extract_members(const std::string& archive, const std::string& dest_dir,
                                         const std::vector<std::string>& wanted,
                                         uint64_t max_member_bytes) {
  std::set<std::string> want;
  for (const std::string& w : wanted) {
    CYCLONE_CHECK(!w.empty() && w != "." && w != ".." && w.find('/') == std::string::npos &&
                      w.find('\0') == std::string::npos,
                  "extract_members: wanted name \"", w, "\" is not a plain file name (archive ",
                  archive, ")");
    want.insert(w);
  }
  {
    std::error_code ec;
    const auto st = fs::status(dest_dir, ec);
    CYCLONE_CHECK(fs::is_directory(st), "cannot extract ", archive, " into ", dest_dir, ": ",
                  ec ? ec.message() : std::string("not a directory"));
  }

  // Pass 1: vet every member; find where the wanted ones are.
  std::map<std::string, std::string> found;  // base name -> member name
  {
    ArchivePtr a = open_archive(archive);
    while (struct archive_entry* entry = next_entry(a.get(), archive)) {
      const std::string name = vet_member(entry, archive, max_member_bytes);
      if (archive_entry_filetype(entry) == AE_IFREG) {
        const std::string base = base_name(name);
        if (want.count(base)) {
          const auto [it, inserted] = found.emplace(base, name);
          CYCLONE_CHECK(inserted, "archive ", archive, ": wanted file \"", base,
                        "\" is held by two members, \"", it->second, "\" and \"", name, "\"");
        }
      }
      // Reading through each member's data (not just its header) is what finds a truncated
      // compressed stream before anything is written.
      if (archive_read_data_skip(a.get()) != ARCHIVE_OK) {
        CYCLONE_THROW("archive ", archive, ": damaged or truncated in member \"", name,
                      "\": ", reason(a.get()));
      }
    }
  }
  std::string missing;
  for (const std::string& w : want) {
    if (!found.count(w)) missing += (missing.empty() ? "" : ", ") + w;
  }
  CYCLONE_CHECK(missing.empty(), "archive ", archive, " lacks the wanted file(s): ", missing);

  // Pass 2: write the wanted members into a private directory, then rename them into place.
  static std::atomic<uint64_t> counter{0};
  const fs::path dest(dest_dir);
  const fs::path tmp = dest / (".extract-" + std::to_string(::getpid()) + "-" +
                               std::to_string(counter.fetch_add(1)));
  CYCLONE_CHECK(::mkdir(tmp.c_str(), 0700) == 0, "cannot extract ", archive, " into ", dest_dir,
                ": cannot create ", tmp.string(), ": ", errno_reason(errno));
  TempDirGuard guard{tmp};
  std::set<std::string> written;
  {
    ArchivePtr a = open_archive(archive);
    while (struct archive_entry* entry = next_entry(a.get(), archive)) {
      // The archive may have changed on disk between the passes; vet again.
      const std::string name = vet_member(entry, archive, max_member_bytes);
      const std::string base = base_name(name);
      if (archive_entry_filetype(entry) != AE_IFREG || !want.count(base)) continue;
      CYCLONE_CHECK(!written.count(base), "archive ", archive, ": wanted file \"", base,
                    "\" is held by two members");
      const int64_t declared = archive_entry_size_is_set(entry) ? archive_entry_size(entry) : -1;
      write_member(a.get(), archive, name, (tmp / base).string(), declared, max_member_bytes);
      written.insert(base);
    }
  }
  CYCLONE_CHECK(written.size() == want.size(), "archive ", archive,
                " changed while being extracted: ", want.size() - written.size(),
                " wanted file(s) vanished");
  std::vector<std::string> result;
  for (const std::string& w : wanted) {
    if (std::find(result.begin(), result.end(), w) != result.end()) continue;
    std::error_code ec;
    fs::rename(tmp / w, dest / w, ec);
    CYCLONE_CHECK(!ec, "cannot move ", (tmp / w).string(), " to ", (dest / w).string(), ": ",
                  ec.message());
    result.push_back(w);
  }
  fsync_dir(dest);
  return result;
}

}  // namespace cyclone::data
