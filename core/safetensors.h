// safetensors I/O (https://github.com/huggingface/safetensors): the weight format PyTorch and the
// Python `safetensors` package read and write.
//
// Layout: 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value"}}
// (padded with spaces to a multiple of 8), then the tensors' bytes, row-major, little-endian,
// offsets relative to the end of the header. Files are treated as hostile: the header length,
// every offset and every shape is checked against the file size before anything is allocated,
// offsets must tile the data exactly (no overlaps, no gaps, as the reference implementation
// demands), and JSON nesting is bounded. Errors name the file and what is wrong.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cyclone/core/tensor.h"

namespace cyclone {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct SafetensorsFile {
  NamedTensors tensors = {};  // in file order (by data offset)
  std::map<std::string, std::string> metadata = {};
};

// The file's bytes for these tensors (any device; copied to the host). Names must be unique and
// non-empty and must not be "__metadata__".
std::string serialize_safetensors(const NamedTensors& tensors,
                                  const std::map<std::string, std::string>& metadata = {});
// Written atomically (core/file_util.h): never a half-written file under `path`.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Parses bytes; `origin` names the source in errors. Tensors are created on `device`.
SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& origin,
                                  Device device = Device::cpu());
SafetensorsFile load_safetensors(const std::string& path, Device device = Device::cpu());

// What a file holds, from its header alone (no tensor data is read): each tensor's name, dtype and
// shape in data order, after the checks load_safetensors makes against the file's size, so a
// truncated or damaged file is found before anything is allocated or loaded.
struct SafetensorsEntry {
  std::string name = {};
  DType dtype = {};
  std::vector<int64_t> shape = {};
};
std::vector<SafetensorsEntry> read_safetensors_header(const std::string& path);

// "F32" <-> DType (F32, F64, I32, U8, BF16, F16).
const char* safetensors_dtype(DType dtype);

}  // namespace cyclone
