#include "cyclone/train/tensorboard.h"

#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "cyclone/core/error.h"
#include "cyclone/core/file_util.h"

namespace cyclone::train {

namespace {

constexpr std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrc32cTable = make_crc32c_table();

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// Protobuf wire format (https://protobuf.dev/programming-guides/encoding/), only what
// tensorflow/core/util/event.proto and summary.proto need.
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_fixed(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put_key(std::string& out, int field, int wire_type) {
  put_varint(out, static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(wire_type));
}
void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_key(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}
void put_double(std::string& out, int field, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  put_key(out, field, 1);
  put_fixed(out, bits, 8);
}
void put_float(std::string& out, int field, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  put_key(out, field, 5);
  put_fixed(out, bits, 4);
}
void put_int64(std::string& out, int field, int64_t v) {
  put_key(out, field, 0);
  // int64 (not sint64): a negative step is its two's complement, ten bytes long.
  put_varint(out, static_cast<uint64_t>(v));
}

// Event{wall_time = 1, step = 2, file_version = 3 | summary = 5 | session_log = 7}.
std::string event_header(double wall_time, int64_t step) {
  std::string e;
  put_double(e, 1, wall_time < 0 ? now_seconds() : wall_time);
  put_int64(e, 2, step);
  return e;
}

// Summary.Value{tag = 1, simple_value = 2}.
std::string scalar_value(const std::string& tag, double value) {
  std::string v;
  put_bytes(v, 1, tag);
  put_float(v, 2, static_cast<float>(value));
  return v;
}

// Summary.Value{tag = 1, tensor = 8 (TensorProto{dtype = 1: DT_STRING = 7, string_val = 8}),
// metadata = 9 (SummaryMetadata{plugin_data = 1 (PluginData{plugin_name = 1: "text"})})}: the
// layout tensorboard.plugins.text.summary writes.
std::string text_value(const std::string& tag, const std::string& text) {
  std::string tensor;
  put_key(tensor, 1, 0);
  put_varint(tensor, 7);
  put_bytes(tensor, 2, "");  // TensorShapeProto with no dims: a scalar
  put_bytes(tensor, 8, text);
  std::string plugin_data;
  put_bytes(plugin_data, 1, "text");
  std::string metadata;
  put_bytes(metadata, 1, plugin_data);
  std::string v;
  put_bytes(v, 1, tag);
  put_bytes(v, 8, tensor);
  put_bytes(v, 9, metadata);
  return v;
}

std::string hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

}  // namespace

uint32_t crc32c(const void* data, size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) crc = kCrc32cTable[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}

struct TensorBoardWriter::Impl {
  std::string path;
  std::FILE* file = nullptr;
  // After a failed write the file may end in half a record; refusing further writes keeps the
  // first (real) reason in the error instead of a cascade of confusing ones.
  std::string failure;

  ~Impl() {
    if (file != nullptr) std::fclose(file);
  }

  [[noreturn]] void fail(const char* what, int err) {
    failure = std::string(what) + " failed: " + errno_reason(err);
    CYCLONE_THROW("cannot write TensorBoard events to ", path, ": ", failure);
  }

  void write_record(const std::string& data) {
    CYCLONE_CHECK(failure.empty(), "cannot write TensorBoard events to ", path,
                  ": an earlier write failed (", failure, ")");
    std::string rec;
    rec.reserve(data.size() + 16);
    put_fixed(rec, data.size(), 8);
    const uint32_t len_crc = masked_crc32c(rec.data(), 8);
    put_fixed(rec, len_crc, 4);
    rec += data;
    put_fixed(rec, masked_crc32c(data.data(), data.size()), 4);
    errno = 0;
    if (std::fwrite(rec.data(), 1, rec.size(), file) != rec.size()) fail("write", errno);
  }

  void write_summary(double wall_time, int64_t step, const std::string& values) {
    std::string e = event_header(wall_time, step);
    put_bytes(e, 5, values);
    write_record(e);
  }

  void flush() {
    errno = 0;
    if (std::fflush(file) != 0) fail("flush", errno);
    if (::fsync(::fileno(file)) != 0) fail("fsync", errno);
  }
};

TensorBoardWriter::TensorBoardWriter(const std::string& log_dir) : impl_(std::make_unique<Impl>()) {
  namespace fs = std::filesystem;
  make_directories(log_dir);
  // The counter keeps two writers opened in the same second by one process apart.
  static std::atomic<int> counter{0};
  // TensorBoard reads a folder's files in name order, and a restart marker (purge_from) acts on
  // the files read before it: a new file must sort after the folder's others, which the name's
  // time alone does not ensure within one second (pid 999 sorts after pid 1000).
  long long seconds = static_cast<long long>(now_seconds());
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(log_dir, ec)) {
    const std::string name = e.path().filename().string();
    const std::string prefix = "events.out.tfevents.";
    if (name.rfind(prefix, 0) != 0) continue;
    char* end = nullptr;
    const long long t = std::strtoll(name.c_str() + prefix.size(), &end, 10);
    if (end != name.c_str() + prefix.size() && t >= seconds && t < seconds + 1000000)
      seconds = t + 1;
  }
  impl_->path =
      (fs::path(log_dir) / ("events.out.tfevents." + std::to_string(seconds) + "." + hostname() +
                            "." + std::to_string(::getpid()) + "." + std::to_string(counter++)))
          .string();
  // "x": never append to (and corrupt) an existing event file.
  impl_->file = std::fopen(impl_->path.c_str(), "wbx");
  if (impl_->file == nullptr)
    CYCLONE_THROW("cannot create TensorBoard event file ", impl_->path, ": ", errno_reason(errno));
  std::string first = event_header(-1, 0);
  put_bytes(first, 3, "brain.Event:2");
  try {
    impl_->write_record(first);
    // TensorBoard lists a run as soon as its file holds a valid record.
    impl_->flush();
  } catch (const Error&) {
    // A torn first record would make TensorBoard warn about this run forever.
    std::fclose(impl_->file);
    impl_->file = nullptr;
    std::remove(impl_->path.c_str());
    throw;
  }
}

TensorBoardWriter::~TensorBoardWriter() {
  if (!impl_ || impl_->file == nullptr) return;
  if (impl_->failure.empty()) {
    try {
      impl_->flush();
    } catch (const Error& e) {
      // A destructor must not throw; losing the last events silently would be worse than a line.
      std::fprintf(stderr, "warning: %s\n", e.message().c_str());
    }
  }
}

TensorBoardWriter::TensorBoardWriter(TensorBoardWriter&&) noexcept = default;

TensorBoardWriter& TensorBoardWriter::operator=(TensorBoardWriter&& other) noexcept {
  if (this != &other) {
    TensorBoardWriter old(std::move(*this));
    impl_ = std::move(other.impl_);
  }
  return *this;
}

void TensorBoardWriter::add_scalar(const std::string& tag, double value, int64_t step,
                                   double wall_time) {
  std::string summary;
  put_bytes(summary, 1, scalar_value(tag, value));
  impl_->write_summary(wall_time, step, summary);
}

void TensorBoardWriter::add_scalars(int64_t step,
                                    const std::vector<std::pair<std::string, double>>& tag_values,
                                    double wall_time) {
  if (tag_values.empty()) return;
  std::string summary;
  for (const auto& [tag, value] : tag_values) put_bytes(summary, 1, scalar_value(tag, value));
  impl_->write_summary(wall_time, step, summary);
}

void TensorBoardWriter::add_text(const std::string& tag, const std::string& text, int64_t step,
                                 double wall_time) {
  std::string summary;
  put_bytes(summary, 1, text_value(tag, text));
  impl_->write_summary(wall_time, step, summary);
}

void TensorBoardWriter::purge_from(int64_t step, double wall_time) {
  std::string session_log;  // SessionLog{status = 1: START = 1}
  put_key(session_log, 1, 0);
  put_varint(session_log, 1);
  std::string e = event_header(wall_time, step);
  put_bytes(e, 7, session_log);
  impl_->write_record(e);
}

void TensorBoardWriter::flush() {
  CYCLONE_CHECK(impl_->failure.empty(), "cannot write TensorBoard events to ", impl_->path,
                ": an earlier write failed (", impl_->failure, ")");
  impl_->flush();
}

const std::string& TensorBoardWriter::path() const { return impl_->path; }

}  // namespace cyclone::train
