#include "cyclone/data/gzip.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>
#include <type_traits>

#include "cyclone/core/error.h"
#include "cyclone/core/file_util.h"

namespace cyclone::data {

bool is_gzip(const uint8_t* bytes, size_t size) {
  return size >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

std::vector<uint8_t> gunzip(const uint8_t* bytes, size_t size, const std::string& name,
                            size_t max_bytes, const std::string& limit_note) {
  z_stream zs{};
  // 16 + MAX_WBITS: expect a gzip header and trailer (the CRC-32 and length are verified).
  CYCLONE_CHECK(inflateInit2(&zs, 16 + MAX_WBITS) == Z_OK, name, ": cannot initialise zlib");
  const std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, inflateEnd);
  std::vector<uint8_t> out;
  // Grow by what was actually decoded (never by what a header claims), in steps of 1 MiB or a
  // quarter of the output so far.
  out.resize(std::min<size_t>(max_bytes, std::max<size_t>(size * 2, 1 << 16)));
  size_t produced = 0, consumed = 0;
  while (true) {
    if (produced == out.size()) {
      CYCLONE_CHECK(out.size() < max_bytes, name, ": decompresses to more than ", max_bytes,
                    " bytes (",
                    limit_note.empty() ? "the limit for a dataset file); it is not a dataset file"
                                       : limit_note);
      out.resize(std::min(max_bytes, out.size() + std::max<size_t>(out.size() / 4, 1 << 20)));
    }
    // zlib counts in uInt (32 bits): feed and drain at most 1 GiB per call.
    const size_t in_chunk = std::min<size_t>(size - consumed, 1u << 30);
    const size_t out_chunk = std::min<size_t>(out.size() - produced, 1u << 30);
    zs.next_in = const_cast<Bytef*>(bytes + consumed);
    zs.avail_in = static_cast<uInt>(in_chunk);
    zs.next_out = out.data() + produced;
    zs.avail_out = static_cast<uInt>(out_chunk);
    const int rc = inflate(&zs, Z_NO_FLUSH);
    consumed += in_chunk - zs.avail_in;
    produced += out_chunk - zs.avail_out;
    if (rc == Z_STREAM_END) {
      // Another member may follow (gzip concatenation); trailing zero padding is tolerated the
      // way gzip(1) tolerates it.
      const bool only_zeros =
          std::all_of(bytes + consumed, bytes + size, [](uint8_t b) { return b == 0; });
      if (consumed == size || only_zeros) break;
      CYCLONE_CHECK(is_gzip(bytes + consumed, size - consumed), name,
                    ": unexpected bytes after the gzip data at byte offset ", consumed);
      CYCLONE_CHECK(inflateReset(&zs) == Z_OK, name, ": cannot reset zlib");
      continue;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR) {
      // No progress was possible: with room left in the output, the input has run out.
      CYCLONE_CHECK(consumed < size || zs.avail_out == 0, name,
                    ": truncated gzip data (the stream ends at byte offset ", size,
                    " before its end marker)");
      CYCLONE_CHECK(zs.avail_out == 0, name, ": corrupt gzip data near byte offset ", consumed);
      continue;
    }
    CYCLONE_THROW(name, ": corrupt gzip data near byte offset ", consumed,
                  " (zlib: ", zs.msg != nullptr ? zs.msg : "error", ")");
  }
  out.resize(produced);
  out.shrink_to_fit();
  return out;
}

namespace {

// The size of `path`, a regular file, or an Error naming it.
uintmax_t regular_file_size(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  CYCLONE_CHECK(st.type() != fs::file_type::not_found, path, ": no such file");
  CYCLONE_CHECK(st.type() != fs::file_type::directory, path,
                ": is a directory, not a dataset file");
  CYCLONE_CHECK(!ec, path, ": cannot stat: ", ec.message());
  CYCLONE_CHECK(st.type() == fs::file_type::regular, path, ": not a regular file");
  const uintmax_t on_disk = fs::file_size(path, ec);
  CYCLONE_CHECK(!ec, path, ": cannot read its size: ", ec.message());
  return on_disk;
}

}  // namespace

FileHead read_file_head(const std::string& path, size_t n) {
  regular_file_size(path);  // a FIFO would block gzopen; missing and directories are said here
  // zlib's gzread reads raw files as they are and gzip data decompressed, a buffer at a time.
  errno = 0;
  const std::unique_ptr<std::remove_pointer_t<gzFile>, int (*)(gzFile)> gz(
      gzopen(path.c_str(), "rb"), gzclose);
  CYCLONE_CHECK(gz != nullptr, path, ": cannot open: ", errno_reason(errno));
  FileHead head;
  head.bytes.resize(n);
  size_t got = 0;
  while (got < n) {
    const int r = gzread(gz.get(), head.bytes.data() + got,
                         static_cast<unsigned>(std::min<size_t>(n - got, 1u << 30)));
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  head.bytes.resize(got);
  head.gzip = gzdirect(gz.get()) == 0;  // known once gzread has looked at the first bytes
  return head;
}

std::vector<uint8_t> read_file(const std::string& path, size_t max_bytes,
                               const std::string& limit_note, size_t max_on_disk) {
  const uintmax_t on_disk = regular_file_size(path);
  if (max_on_disk == 0) max_on_disk = max_bytes;
  CYCLONE_CHECK(on_disk <= max_on_disk, path, ": ", on_disk, " bytes, more than the ", max_on_disk,
                " a dataset file may have");

  errno = 0;
  const std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  CYCLONE_CHECK(f != nullptr, path, ": cannot open: ", errno_reason(errno));
  std::vector<uint8_t> bytes(static_cast<size_t>(on_disk));
  const size_t got = bytes.empty() ? 0 : std::fread(bytes.data(), 1, bytes.size(), f.get());
  CYCLONE_CHECK(!std::ferror(f.get()), path, ": read error at byte offset ", got, ": ",
                std::strerror(errno));
  // The file may have shrunk between stat and read: trust what was read.
  bytes.resize(got);
  if (!is_gzip(bytes.data(), bytes.size())) return bytes;
  return gunzip(bytes.data(), bytes.size(), path, max_bytes, limit_note);
}

}  // namespace cyclone::data
