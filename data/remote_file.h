// RemoteFile: one file of a dataset as published — where to fetch it (mirrors, tried in turn) and
// how to know it arrived whole (size, MD5). The manifest (data/manifest.h) lists them per dataset;
// the downloader (data/download.h) fetches one; data/fetch.h puts a dataset together.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cyclone::data {

struct RemoteFile {
  std::string name = {};  // file name in the dataset directory: "t10k-labels-idx1-ubyte.gz"
  std::vector<std::string> urls = {};  // the same file at each mirror, tried in order
  std::string md5 = {};                // 32 lowercase hex digits
  int64_t size = -1;                   // bytes; -1 when not published
  // For a .gz file: the MD5 of its decompressed bytes (optional). A copy recompressed with another
  // gzip header — Debian's dataset-fashion-mnist is one — then still verifies as the same data.
  std::string content_md5 = {};

  // A tar archive (.tar, .tar.gz, .tgz) whose members are extracted; other files are kept as
  // they are (MNIST's .gz IDX files are read compressed).
  bool is_archive() const;
};

}  // namespace cyclone::data
