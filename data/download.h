// The downloader of dataset files: one RemoteFile over HTTP(S) from the first mirror that works,
// resumable (an interrupted transfer leaves <dest>.part, continued with a Range request), checked
// (size, MD5) before it takes its final name, so a half or corrupt download is never mistaken for
// a dataset file. Every failure is one Error line saying what to do by hand.
#pragma once

#include <string>
#include <string_view>

#include "cyclone/data/remote_file.h"

namespace cyclone::data {

struct DownloadOptions {
  double connect_timeout_seconds = 10;  // per connection attempt
  double stall_seconds = 30;            // abort when below 1 byte/s for this long
  int progress_mode = -1;               // ProgressBar mode (-1 auto, 0 plain, 1 bar); -2: silent
  std::string label = {};               // progress label; empty: the file name
};

// Downloads `f` to `dest` (a full path whose directory exists). Bytes go to dest + ".part"; an
// existing .part is resumed with "Range: bytes=N-" (a server answering 200 instead of 206 restarts
// it; a file:// URL is read from byte N). After the transfer the size (when f.size >= 0) and MD5
// (when f.md5 is not empty) are checked, the .part is fsynced and renamed to `dest`. Mirrors
// (f.urls) are tried in turn; a size or MD5 mismatch removes the .part. Proxies come from the
// environment (http_proxy, https_proxy, no_proxy), redirects are followed. Throws cyclone::Error,
// one line: the URL(s) tried, why each failed, and "fetch <first url> by hand and put it in
// <directory>".
void download_file(const RemoteFile& f, const std::string& dest,
                   const DownloadOptions& options = {});

// Lowercase hex MD5 of a file, read in 1 MiB chunks; an Error names the path.
std::string md5_file(const std::string& path);
std::string md5_bytes(std::string_view bytes);

// An exclusive advisory lock (flock) on the directory `dir` held for the object's life, so
// that one process downloads into `dir` while the others wait (and then find the files there).
// When the lock is taken, one line goes to stderr ("waiting for another process fetching <what> in
// <dir> ...") and the constructor blocks until it is free. A directory that cannot be opened
// (missing, not a directory) is an Error naming it. No file is left in `dir`.
class DirLock {
 public:
  DirLock(const std::string& dir, const std::string& what);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace cyclone::data
