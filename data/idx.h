// The IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/, "FILE FORMATS"):
//   bytes 0-1  zero
//   byte  2    element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
//              0x0E float64 (big-endian)
//   byte  3    number of dimensions d (MNIST: 3 for images, 1 for labels)
//   4 d bytes  the dimensions, big-endian uint32
//   then       the elements, row-major.
// parse_idx validates all of it against the buffer length before anyone allocates from it: the
// header must fit, the dimensions' product (overflow-checked) times the element size must equal
// the bytes that follow exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cyclone::data {

struct IdxView {
  uint8_t type = 0;                // the element type code (0x08 ...)
  size_t element_size = 0;         // bytes per element
  std::vector<int64_t> dims = {};  // as in the header
  size_t data_offset = 0;          // byte offset of the first element
  const uint8_t* data = nullptr;   // the elements (inside the parsed buffer)
  int64_t count() const { return dims.empty() ? 0 : dims[0]; }
};

// Parses an IDX buffer; `name` (the file) goes into every error with the byte offset concerned.
// `expected_rank` > 0 also checks the number of dimensions (3 for images, 1 for labels).
IdxView parse_idx(const uint8_t* bytes, size_t size, const std::string& name,
                  int expected_rank = 0);

// The whole file's size (header and elements) that an IDX header says, from the file's first
// bytes (at least the header's): what a reader may read before it reads the rest. The header's
// errors as parse_idx's; a size past 2^64 is UINT64_MAX.
uint64_t idx_file_size(const uint8_t* bytes, size_t size, const std::string& name,
                       int expected_rank = 0);

// "uint8", "int32", ... for an IDX type code ("unknown" otherwise).
const char* idx_type_name(uint8_t type);

}  // namespace cyclone::data
