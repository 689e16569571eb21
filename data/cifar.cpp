#include "cyclone/data/cifar.h"

#include "cyclone/core/error.h"

namespace cyclone::data {

CifarView parse_cifar(const uint8_t* bytes, size_t size, const std::string& name, CifarKind kind) {
  CifarView v;
  v.kind = kind;
  v.label_bytes = kind == CifarKind::kCifar10 ? 1 : 2;
  v.record_size = v.label_bytes + kCifarPixels;
  const char* what = kind == CifarKind::kCifar10 ? "CIFAR-10" : "CIFAR-100";
  CYCLONE_CHECK(size > 0, name, ": empty file, not a ", what, " batch");
  CYCLONE_CHECK(size % v.record_size == 0, name, ": ", size, " bytes is not a whole number of ",
                what, " records of ", v.record_size, " bytes (", size / v.record_size,
                " records and ", size % v.record_size, " bytes over, the last record starting at ",
                "byte offset ", size / v.record_size * v.record_size, "): truncated, or not a ",
                what, " binary file");
  v.count = static_cast<int64_t>(size / v.record_size);
  v.data = bytes;
  for (int64_t i = 0; i < v.count; ++i) {
    const uint8_t* r = bytes + i * v.record_size;
    const size_t offset = static_cast<size_t>(i) * v.record_size;
    if (kind == CifarKind::kCifar10) {
      CYCLONE_CHECK(r[0] < 10, name, ": label ", int{r[0]}, " of record ", i, " at byte offset ",
                    offset, " is outside [0, 10): not a CIFAR-10 binary file (a CIFAR-100 one?)");
    } else {
      CYCLONE_CHECK(r[0] < 20, name, ": coarse label ", int{r[0]}, " of record ", i,
                    " at byte offset ", offset, " is outside [0, 20): not a CIFAR-100 binary file");
      CYCLONE_CHECK(r[1] < 100, name, ": fine label ", int{r[1]}, " of record ", i,
                    " at byte offset ", offset + 1,
                    " is outside [0, 100): not a CIFAR-100 binary file");
    }
  }
  return v;
}

}  // namespace cyclone::data
