// Helpers of the data tests: where the committed files are, scratch directories, and writers of
// IDX, CIFAR and gzip bytes made by the tests themselves (independent of the code under test).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/test_util.h"

namespace cyclone::testing {

// tests/data/ of the source tree (found from this header's path, so a fresh clone needs no
// configuration).
inline std::filesystem::path test_data_dir() {
  return std::filesystem::path(__FILE__).parent_path();
}

inline void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << "cannot write " << path;
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

// An IDX file: magic (0, 0, type, rank), big-endian dims, payload.
inline std::vector<uint8_t> idx_bytes(uint8_t type, const std::vector<uint32_t>& dims,
                                      const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> b = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(d >> s));
  }
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

inline uint32_t crc32(const std::vector<uint8_t>& data) {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  uint32_t c = 0xFFFFFFFFu;
  for (uint8_t b : data) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

// gzip (RFC 1952) of `data` with deflate "stored" blocks (RFC 1951, BTYPE 00): valid gzip that any
// gunzip reads, written without zlib so the tests do not trust the library under test.
inline std::vector<uint8_t> gzip_stored(const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
  size_t pos = 0;
  do {
    const size_t n = std::min<size_t>(65535, data.size() - pos);
    const bool last = pos + n == data.size();
    out.push_back(last ? 1 : 0);
    out.push_back(static_cast<uint8_t>(n));
    out.push_back(static_cast<uint8_t>(n >> 8));
    out.push_back(static_cast<uint8_t>(~n));
    out.push_back(static_cast<uint8_t>(~n >> 8));
    out.insert(out.end(), data.begin() + pos, data.begin() + pos + n);
    pos += n;
  } while (pos < data.size());
  const uint32_t crc = crc32(data), size = static_cast<uint32_t>(data.size());
  for (int s = 0; s < 32; s += 8) out.push_back(static_cast<uint8_t>(crc >> s));
  for (int s = 0; s < 32; s += 8) out.push_back(static_cast<uint8_t>(size >> s));
  return out;
}

// FNV-1a 64 of a byte range: a stable checksum for pinning real data.
inline uint64_t fnv1a(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// EXPECT that `stmt` throws a cyclone::Error whose message contains every one of `parts`.
#define EXPECT_ERROR_WITH(stmt, ...)                                          \
  do {                                                                        \
    try {                                                                     \
      stmt;                                                                   \
      ADD_FAILURE() << "expected an Error from " #stmt;                       \
    } catch (const ::cyclone::Error& e) {                                     \
      for (const std::string& part : std::vector<std::string>{__VA_ARGS__}) { \
        EXPECT_NE(e.message().find(part), std::string::npos)                  \
            << "message lacks '" << part << "': " << e.message();             \
      }                                                                       \
    }                                                                         \
  } while (0)

}  // namespace cyclone::testing
