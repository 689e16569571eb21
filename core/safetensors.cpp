#include "cyclone/core/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "cyclone/core/file_util.h"

namespace cyclone {

namespace {

using json = nlohmann::json;

// The reference implementation's limit; a bigger header is not a real weights file.
constexpr uint64_t kMaxHeader = 100u << 20;
constexpr int kMaxDepth = 4;  // {name: {shape: [..]}} nests 3 deep

// I64 tensors (PyTorch's num_batches_tracked, token ids) have no Cyclone dtype: they are read as
// int32, every value range-checked.
constexpr const char* kI64 = "I64";

DType parse_st_dtype(const std::string& s, const std::string& origin, const std::string& name) {
  if (s == kI64) return DType::kInt32;
  if (s == "F32") return DType::kFloat32;
  if (s == "F64") return DType::kFloat64;
  if (s == "I32") return DType::kInt32;
  if (s == "U8") return DType::kUInt8;
  if (s == "BF16") return DType::kBFloat16;
  if (s == "F16") return DType::kFloat16;
  CYCLONE_THROW(origin, ": tensor '", name, "' has dtype '", s,
                "', which Cyclone does not read (F32, F64, I32, I64, U8, BF16, F16)");
}

uint64_t read_u64_le(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// The header's length from the file's first 8 bytes (read only when the file has them), checked
// against the file's `size` and the reference implementation's limit.
uint64_t header_length(const char* first8, uint64_t size, const std::string& origin) {
  CYCLONE_CHECK(size >= 8, origin, ": not a safetensors file (", size,
                " bytes, shorter than the 8-byte header length)");
  const uint64_t n = read_u64_le(first8);
  CYCLONE_CHECK(n <= kMaxHeader && n <= size - 8, origin, ": header length ", n,
                " at byte 0 exceeds the file (", size, " bytes) or the 100 MiB limit");
  return n;
}

struct Entry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
  size_t file_elem;  // bytes per element in the file
};

// The header's entries, sorted by data offset, every one checked against the `data_size` bytes
// after the header (offsets inside, shapes matching their bytes, the data tiled exactly).
std::vector<Entry> parse_header(std::string_view text, uint64_t data_size,
                                const std::string& origin,
                                std::map<std::string, std::string>* metadata) {
  json header;
  try {
    // Bounded nesting: a header of a million '[' must not exhaust the stack.
    header = json::parse(text, [&](int depth, json::parse_event_t, json&) {
      if (depth > kMaxDepth) throw Error(origin + ": header JSON nests too deeply");
      return true;
    });
  } catch (const json::exception& e) {
    CYCLONE_THROW(origin, ": header is not valid JSON: ", e.what());
  }
  CYCLONE_CHECK(header.is_object(), origin, ": header is not a JSON object");

  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      CYCLONE_CHECK(v.is_object(), origin, ": __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        CYCLONE_CHECK(m.value().is_string(), origin, ": __metadata__ value of '", m.key(),
                      "' is not a string");
        if (metadata) (*metadata)[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    CYCLONE_CHECK(v.is_object() && v.contains("dtype") && v["dtype"].is_string() &&
                      v.contains("shape") && v["shape"].is_array() && v.contains("data_offsets") &&
                      v["data_offsets"].is_array() && v["data_offsets"].size() == 2,
                  origin, ": entry '", name, "' lacks dtype / shape / data_offsets");
    const std::string st_dtype = v["dtype"].get<std::string>();
    Entry e{name, parse_st_dtype(st_dtype, origin, name), {}, 0, 0, st_dtype == kI64 ? 8u : 0u};
    if (e.file_elem == 0) e.file_elem = dtype_size(e.dtype);
    for (const json& d : v["shape"]) {
      CYCLONE_CHECK(d.is_number_unsigned() && d.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX),
                    origin, ": tensor '", name, "' has a bad dimension ", d.dump());
      e.shape.push_back(d.get<int64_t>());
    }
    for (int k = 0; k < 2; ++k)
      CYCLONE_CHECK(v["data_offsets"][k].is_number_unsigned(), origin, ": tensor '", name,
                    "' has a bad data offset ", v["data_offsets"][k].dump());
    e.begin = v["data_offsets"][0].get<uint64_t>();
    e.end = v["data_offsets"][1].get<uint64_t>();
    CYCLONE_CHECK(e.begin <= e.end && e.end <= data_size, origin, ": tensor '", name, "' data [",
                  e.begin, ", ", e.end, ") lies outside the ", data_size, " data bytes");
    // The element count is checked against the tensor's byte range as it is multiplied, so no
    // product can overflow and nothing larger than the file is ever allocated.
    const uint64_t capacity = (e.end - e.begin) / e.file_elem;
    uint64_t numel = 1;
    bool fits = true;
    for (int64_t d : e.shape) {
      if (d != 0 && numel > capacity / static_cast<uint64_t>(d)) fits = false;
      numel = fits ? numel * static_cast<uint64_t>(d) : numel;
      if (d == 0) numel = 0;
    }
    CYCLONE_CHECK(fits && numel * e.file_elem == e.end - e.begin, origin, ": tensor '", name,
                  "' of shape ", v["shape"].dump(), " and dtype ", dtype_name(e.dtype),
                  " does not match its data of ", e.end - e.begin, " bytes");
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  uint64_t expect = 0;
  for (const Entry& e : entries) {
    CYCLONE_CHECK(e.begin == expect, origin, ": tensor '", e.name, "' starts at data byte ",
                  e.begin, " but ", expect, " was expected (overlapping or gapped tensors)");
    expect = e.end;
  }
  CYCLONE_CHECK(expect == data_size, origin, ": ", data_size - expect,
                " trailing data bytes belong to no tensor");
  return entries;
}

}  // namespace

const char* safetensors_dtype(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "F32";
    case DType::kFloat64:
      return "F64";
    case DType::kInt32:
      return "I32";
    case DType::kUInt8:
      return "U8";
    case DType::kBFloat16:
      return "BF16";
    case DType::kFloat16:
      return "F16";
  }
  return "?";
}

std::string serialize_safetensors(const NamedTensors& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    CYCLONE_CHECK(!name.empty() && name != "__metadata__", "safetensors: bad tensor name '", name,
                  "'");
    CYCLONE_CHECK(seen.insert(name).second, "safetensors: tensor name '", name, "' appears twice");
    CYCLONE_CHECK(t.defined(), "safetensors: tensor '", name, "' is undefined");
    header[name] = {{"dtype", safetensors_dtype(t.dtype())},
                    {"shape", t.shape().dims()},
                    {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += text;
  out.reserve(out.size() + offset);
  for (const auto& [name, t] : tensors) {
    const size_t at = out.size();
    out.resize(at + t.nbytes());
    t.copy_to_host(out.data() + at);  // host order is little-endian on every supported machine
  }
  return out;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, serialize_safetensors(tensors, metadata));
}

SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& origin,
                                  Device device) {
  const uint64_t n = header_length(bytes.data(), bytes.size(), origin);
  const std::string_view text = bytes.substr(8, n);
  const uint64_t data_size = bytes.size() - 8 - n;
  const char* data = bytes.data() + 8 + n;

  SafetensorsFile file;
  const std::vector<Entry> entries = parse_header(text, data_size, origin, &file.metadata);
  for (const Entry& e : entries) {
    if (e.file_elem == dtype_size(e.dtype)) {
      file.tensors.emplace_back(e.name,
                                Tensor::from_host(data + e.begin, Shape(e.shape), e.dtype, device));
      continue;
    }
    // I64 -> int32.
    const int64_t n = Shape(e.shape).numel();
    std::vector<int32_t> narrowed(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      int64_t v;
      std::memcpy(&v, data + e.begin + 8 * i, 8);
      CYCLONE_CHECK(v >= INT32_MIN && v <= INT32_MAX, origin, ": I64 tensor '", e.name, "' holds ",
                    v, " at element ", i, ", beyond the int32 Cyclone reads it as");
      narrowed[static_cast<size_t>(i)] = static_cast<int32_t>(v);
    }
    file.tensors.emplace_back(e.name,
                              Tensor::from_vector<int32_t>(narrowed, Shape(e.shape), device));
  }
  return file;
}

SafetensorsFile load_safetensors(const std::string& path, Device device) {
  const std::string bytes = read_file(path);
  return parse_safetensors(bytes, path, device);
}

std::vector<SafetensorsEntry> read_safetensors_header(const std::string& path) {
  const uint64_t size = file_size(path);
  errno = 0;
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"),
                                                          std::fclose);
  if (f == nullptr) CYCLONE_THROW("cannot read ", path, ": ", errno_reason(errno));
  std::string header;
  auto read = [&](uint64_t n) {
    header.resize(n);
    errno = 0;
    if (std::fread(header.data(), 1, n, f.get()) != n)
      CYCLONE_THROW("cannot read ", path, ": ",
                    errno ? errno_reason(errno) : std::string("it ended early"));
  };
  if (size >= 8) read(8);
  const uint64_t n = header_length(header.data(), size, path);
  read(n);
  std::vector<SafetensorsEntry> out;
  for (Entry& e : parse_header(header, size - 8 - n, path, nullptr))
    out.push_back({std::move(e.name), e.dtype, std::move(e.shape)});
  return out;
}

}  // namespace cyclone
