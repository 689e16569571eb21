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
std::vector<uint8_t> gunzip(const uint8_t* bytes, size_t size, const std::string& name,
                            size_t max_bytes = kMaxFileBytes);

// The contents of `path`, decompressed when it is gzip data. Errors name the path: missing,
// a directory, unreadable (permissions, I/O error), larger than max_bytes.
std::vector<uint8_t> read_file(const std::string& path, size_t max_bytes = kMaxFileBytes);

}  // namespace cyclone::data
