// The binary versions of CIFAR-10 and CIFAR-100 (https://www.cs.toronto.edu/~kriz/cifar.html):
// a file is a sequence of fixed-size records and nothing else,
//   CIFAR-10:  1 label byte (0-9)                               + 3072 pixel bytes
//   CIFAR-100: 1 coarse label byte (0-19), 1 fine label byte (0-99) + 3072 pixel bytes
// pixels channel-planar (1024 R, 1024 G, 1024 B), each plane 32 x 32 row-major, i.e. exactly the
// [3, 32, 32] layout of one NCHW image. parse_cifar checks the length is a whole number of records
// and every label is in range, naming the byte offset of the first bad one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace cyclone::data {

enum class CifarKind { kCifar10, kCifar100 };

inline constexpr int kCifarSide = 32, kCifarChannels = 3;
inline constexpr size_t kCifarPixels = 3 * 32 * 32;

struct CifarView {
  CifarKind kind = CifarKind::kCifar10;
  int64_t count = 0;       // records
  size_t label_bytes = 1;  // 1 (CIFAR-10) or 2 (CIFAR-100)
  size_t record_size = 0;  // label_bytes + 3072
  const uint8_t* data = nullptr;

  // The record's pixels ([3, 32, 32]) and its label (CIFAR-100: the fine one unless coarse).
  const uint8_t* pixels(int64_t i) const { return data + i * record_size + label_bytes; }
  int label(int64_t i, bool coarse = false) const {
    const uint8_t* r = data + i * record_size;
    return kind == CifarKind::kCifar10 ? r[0] : (coarse ? r[0] : r[1]);
  }
};

CifarView parse_cifar(const uint8_t* bytes, size_t size, const std::string& name, CifarKind kind);

}  // namespace cyclone::data
