// libFuzzer target for the parsers that read untrusted bytes: gzip (data/gzip.h), IDX
// (data/idx.h) and CIFAR-10/100 (data/cifar.h). The contract under test: any input either parses
// into views that stay inside the buffer or throws cyclone::Error, and nothing allocates more than
// the input justifies. Built with clang -fsanitize=fuzzer,address,undefined by data/CMakeLists.txt;
// tests/data/test_fuzz_slow.cpp runs it for a bounded time over the seed corpus in
// tests/data/fuzz/.
//   ./build/tests/cyclone_fuzz_parsers -max_total_time=60 tests/data/fuzz/corpus
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cyclone/core/error.h"
#include "cyclone/data/cifar.h"
#include "cyclone/data/gzip.h"
#include "cyclone/data/idx.h"

namespace {

// Touches every byte a view claims, so that ASan flags a view reaching outside the buffer.
uint64_t checksum_idx(const cyclone::data::IdxView& v) {
  uint64_t n = v.element_size;
  for (int64_t d : v.dims) n *= static_cast<uint64_t>(d);
  uint64_t s = 0;
  for (uint64_t i = 0; i < n; ++i) s += v.data[i];
  return s;
}

uint64_t checksum_cifar(const cyclone::data::CifarView& v) {
  uint64_t s = 0;
  for (int64_t i = 0; i < v.count; ++i) {
    s += static_cast<uint64_t>(v.label(i)) + v.pixels(i)[0] +
         v.pixels(i)[cyclone::data::kCifarPixels - 1];
  }
  return s;
}

void parse_all(const uint8_t* data, size_t size) {
  using namespace cyclone::data;
  volatile uint64_t sink = 0;
  try {
    sink = sink + checksum_idx(parse_idx(data, size, "fuzz"));
  } catch (const cyclone::Error&) {
  }
  for (CifarKind kind : {CifarKind::kCifar10, CifarKind::kCifar100}) {
    try {
      sink = sink + checksum_cifar(parse_cifar(data, size, "fuzz", kind));
    } catch (const cyclone::Error&) {
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  parse_all(data, size);
  if (cyclone::data::is_gzip(data, size)) {
    try {
      // A small cap: a fuzzer finds decompression bombs quickly, and the cap must stop them.
      const std::vector<uint8_t> plain = cyclone::data::gunzip(data, size, "fuzz", 1 << 22);
      parse_all(plain.data(), plain.size());
    } catch (const cyclone::Error&) {
    }
  }
  return 0;
}
