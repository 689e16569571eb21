// Reading a dataset file into memory, gunzipping it when it is gzip data (recognised by its magic
// bytes 1f 8b, not by its name). Every size is bounded before anything is allocated: the raw file
// by its length on disk, the decompressed data by `max_bytes`, so a corrupt or hostile file (a
// "zip bomb" included) ends in an Error naming the file, never in an absurd allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cyclone::data {

// The largest file (after decompression) the readers accept: MNIST's biggest file is 47 MB and a
// CIFAR batch 30 MB, so 1 GiB leaves room for any dataset these readers know.
inline constexpr size_t kMaxFileBytes = size_t{1} << 30;

// True when the bytes start with the gzip magic number.
bool is_gzip(const uint8_t* bytes, size_t size);

// Decompresses gzip data (one or more concatenated members, as gzip(1) writes them). `name` is the
// file the bytes came from, for errors: truncated or corrupt streams are reported with the
// compressed byte offset where decoding stopped; output over max_bytes is an error.
// `limit_note` says in that error where max_bytes came from (default: the dataset file limit).
std::vector<uint8_t> gunzip(const uint8_t* bytes, size_t size, const std::string& name,
                            size_t max_bytes = kMaxFileBytes, const std::string& limit_note = "");

// The contents of `path`, decompressed when it is gzip data. Errors name the path: missing,
// a directory, unreadable (permissions, I/O error), larger than max_bytes.
// `limit_note` as gunzip's; `max_on_disk` bounds the file itself when that differs from the
// contents' bound (0: max_bytes), as for gzip data checked against a size known in advance.
std::vector<uint8_t> read_file(const std::string& path, size_t max_bytes = kMaxFileBytes,
                               const std::string& limit_note = "", size_t max_on_disk = 0);

// The first `n` bytes of the contents (decompressed when gzip data; fewer when the file is
// shorter), reading no more of the file than that takes, and whether the file is gzip data. The
// path's errors as read_file's; a gzip error within those bytes ends the head early (the full
// read says what is wrong).
struct FileHead {
  std::vector<uint8_t> bytes = {};
  bool gzip = false;
};
FileHead read_file_head(const std::string& path, size_t n);

}  // namespace cyclone::data
