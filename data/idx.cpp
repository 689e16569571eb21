#include "cyclone/data/idx.h"

#include <cstdint>

#include "cyclone/core/error.h"

namespace cyclone::data {
namespace {

size_t idx_element_size(uint8_t type) {
  switch (type) {
    case 0x08:
    case 0x09:
      return 1;
    case 0x0B:
      return 2;
    case 0x0C:
    case 0x0D:
      return 4;
    case 0x0E:
      return 8;
    default:
      return 0;
  }
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

const char* idx_type_name(uint8_t type) {
  switch (type) {
    case 0x08:
      return "uint8";
    case 0x09:
      return "int8";
    case 0x0B:
      return "int16";
    case 0x0C:
      return "int32";
    case 0x0D:
      return "float32";
    case 0x0E:
      return "float64";
    default:
      return "unknown";
  }
}

namespace {

// The magic number, the rank and the dimensions (the view's type, element size, dims and
// data_offset, its data not yet set), and the elements' bytes, overflow-checked.
struct Header {
  IdxView v;
  uint64_t expected = 0;  // bytes of the elements
  bool overflow = false;  // past 2^64: `expected` is meaningless
};

Header parse_header(const uint8_t* bytes, size_t size, const std::string& name, int expected_rank) {
  Header h;
  IdxView& v = h.v;
  CYCLONE_CHECK(size >= 4, name, ": not an IDX file: ", size,
                " bytes, shorter than the 4-byte magic number");
  const uint32_t magic = be32(bytes);
  CYCLONE_CHECK(bytes[0] == 0 && bytes[1] == 0 && idx_element_size(bytes[2]) != 0 && bytes[3] >= 1,
                name, ": not an IDX file: bad magic number 0x", std::hex, magic, std::dec,
                " at byte offset 0 (expected 0x000008dd: two zero bytes, a type code 08-0e, ",
                "a rank >= 1; MNIST images have 0x00000803, labels 0x00000801)");
  v.type = bytes[2];
  v.element_size = idx_element_size(v.type);
  const int rank = bytes[3];
  CYCLONE_CHECK(expected_rank <= 0 || rank == expected_rank, name, ": IDX file of rank ", rank,
                " (magic 0x", std::hex, magic, std::dec, " at byte offset 0) where rank ",
                expected_rank, " was expected");
  const size_t header = 4 + 4 * static_cast<size_t>(rank);
  CYCLONE_CHECK(size >= header, name, ": truncated IDX header: ", rank,
                " dimensions need a header of ", header, " bytes, the file has ", size);
  // The product of the dimensions is formed with overflow checks and only compared with the
  // payload, so neither a billion-item header nor one whose product overflows 64 bits leads to an
  // allocation.
  h.expected = v.element_size;
  for (int i = 0; i < rank; ++i) {
    const uint32_t d = be32(bytes + 4 + 4 * i);
    v.dims.push_back(d);
    h.overflow = h.overflow || __builtin_mul_overflow(h.expected, uint64_t{d}, &h.expected);
  }
  v.data_offset = header;
  return h;
}

}  // namespace

uint64_t idx_file_size(const uint8_t* bytes, size_t size, const std::string& name,
                       int expected_rank) {
  const Header h = parse_header(bytes, size, name, expected_rank);
  const size_t header = h.v.data_offset;
  return h.overflow || h.expected > UINT64_MAX - header ? UINT64_MAX : header + h.expected;
}

IdxView parse_idx(const uint8_t* bytes, size_t size, const std::string& name, int expected_rank) {
  const Header h = parse_header(bytes, size, name, expected_rank);
  IdxView v = h.v;
  const uint64_t expected = h.expected;
  const bool overflow = h.overflow;
  const size_t header = v.data_offset;
  const size_t payload = size - header;
  std::string dims_str;
  for (size_t i = 0; i < v.dims.size(); ++i) {
    dims_str += (i ? " x " : "") + std::to_string(v.dims[i]);
  }
  CYCLONE_CHECK(!overflow && expected == payload, name, ": the IDX header (byte offsets 4-",
                header - 1, ") says ", dims_str, " ", idx_type_name(v.type), " elements, ",
                overflow ? std::string("over 2^64 bytes") : std::to_string(expected) + " bytes",
                ", but the file has ", payload, " bytes after its ", header, "-byte header (",
                !overflow && expected > payload ? "truncated, or " : "", "the header is wrong)");
  v.data = bytes + header;
  return v;
}

}  // namespace cyclone::data
