// fetch_dataset and verify_dataset on directories the tests lay out, with file:// manifests (no
// server): an archive placed by hand is checked before it is extracted, and verify reports every
// file the reader would use, whatever state each one is in.
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "cyclone/core/error.h"
#include "cyclone/data/download.h"
#include "cyclone/data/fetch.h"
#include "cyclone/data/registry.h"
#include "data/data_test_util.h"

// Its own namespace: the sanitizer build compiles the folder as one unit, beside
// test_archive.cpp's and test_download.cpp's helpers.
namespace cyclone::testing::fetch_test {
namespace {

namespace fs = std::filesystem;

std::string contents(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void put(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << p;
}

// A gzipped tar laid out like cifar-10-binary.tar.gz, each batch `records` records.
void write_cifar_tar(const fs::path& path, int records) {
  struct archive* a = archive_write_new();
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(archive_write_add_filter_gzip(a), ARCHIVE_OK);
  ASSERT_EQ(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
  std::vector<std::string> names = {"test_batch.bin"};
  for (int i = 1; i <= 5; ++i) names.push_back("data_batch_" + std::to_string(i) + ".bin");
  for (const std::string& n : names) {
    std::string data;
    for (int r = 0; r < records; ++r) {
      data += static_cast<char>(r % 10);
      data += std::string(3072, static_cast<char>(r + n.size()));
    }
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, ("cifar-10-batches-bin/" + n).c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    ASSERT_EQ(archive_write_header(a, e), ARCHIVE_OK);
    ASSERT_EQ(archive_write_data(a, data.data(), data.size()),
              static_cast<la_ssize_t>(data.size()));
    archive_entry_free(e);
  }
  ASSERT_EQ(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
}

std::string manifest_entry(const std::string& url, const fs::path& published) {
  return R"({"url": ")" + url + R"(", "md5": ")" + data::md5_file(published.string()) +
         R"(", "size": )" + std::to_string(fs::file_size(published)) + "}";
}

struct FetchFixture : ::testing::Test {
  TempDir tmp;
  fs::path mirror = tmp.path() / "mirror";
  fs::path dir = tmp.path() / "data";
  std::string manifest = tmp.file("manifest.json");
  data::FetchOptions options;
  void SetUp() override {
    fs::create_directories(mirror);
    fs::create_directories(dir);
    options.manifest = manifest;
    options.download.progress_mode = -2;
  }
  // A manifest whose cifar10 entry is mirror/cifar-10-binary.tar.gz.
  void publish_cifar() {
    write_cifar_tar(mirror / "cifar-10-binary.tar.gz", 2);
    const fs::path p = mirror / "cifar-10-binary.tar.gz";
    put(manifest, R"({"cifar10": [)" + manifest_entry("file://" + p.string(), p) + "]}");
  }
};

TEST_F(FetchFixture, ArchivePlacedByHandIsExtractedWhenItIsThePublishedOne) {
  publish_cifar();
  fs::copy_file(mirror / "cifar-10-binary.tar.gz", dir / "cifar-10-binary.tar.gz");
  data::fetch_dataset("cifar10", dir.string(), options);
  EXPECT_TRUE(data::dataset_present("cifar10", dir.string()));
  EXPECT_FALSE(fs::exists(dir / "cifar-10-binary.tar.gz"));
  for (const data::VerifiedFile& v : data::verify_dataset("cifar10", dir.string(), manifest))
    EXPECT_EQ(v.status, "ok") << v.name;
}

TEST_F(FetchFixture, ArchivePlacedByHandThatIsNotThePublishedOneIsRefusedBeforeExtracting) {
  publish_cifar();
  // The published size, one byte changed.
  std::string bytes = contents(mirror / "cifar-10-binary.tar.gz");
  bytes[bytes.size() / 2] ^= 1;
  put(dir / "cifar-10-binary.tar.gz", bytes);
  expect_error([&] { data::fetch_dataset("cifar10", dir.string(), options); },
               {(dir / "cifar-10-binary.tar.gz").string(), "not the published", "md5", "expected",
                "remove it"});
  EXPECT_FALSE(fs::exists(dir / "test_batch.bin"));
  EXPECT_FALSE(fs::exists(dir / ".cyclone-verified.json"));
  EXPECT_TRUE(fs::exists(dir / "cifar-10-binary.tar.gz")) << "the user's file is theirs to remove";
}

TEST_F(FetchFixture, TruncatedArchivePlacedByHandSaysToRemoveIt) {
  publish_cifar();
  const std::string whole = contents(mirror / "cifar-10-binary.tar.gz");
  put(dir / "cifar-10-binary.tar.gz", whole.substr(0, whole.size() / 2));
  expect_error(
      [&] { data::fetch_dataset("cifar10", dir.string(), options); },
      {"cifar-10-binary.tar.gz",
       std::to_string(whole.size() / 2) + " bytes, expected " + std::to_string(whole.size()),
       "remove it"});
  EXPECT_FALSE(fs::exists(dir / "test_batch.bin"));
}

// MNIST as published (.gz in mirror/, listed by the manifest with their MD5 and size), and the raw
// bytes of each file.
struct MnistFixture : FetchFixture {
  std::vector<std::string> names = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
  std::map<std::string, std::vector<uint8_t>> raw;
  void SetUp() override {
    FetchFixture::SetUp();
    std::vector<uint8_t> pixels(4 * 28 * 28), labels = {1, 2, 3, 4};
    for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 7);
    raw[names[0]] = raw[names[2]] = idx_bytes(0x08, {4, 28, 28}, pixels);
    raw[names[1]] = raw[names[3]] = idx_bytes(0x08, {4}, labels);
    std::string entries;
    for (const std::string& n : names) {
      const fs::path gz = mirror / (n + ".gz");
      write_file(gz.string(), gzip_stored(raw[n]));
      entries += (entries.empty() ? "" : ", ") + manifest_entry("file://" + gz.string(), gz);
    }
    put(manifest, R"({"mnist": [)" + entries + "]}");
  }
  std::map<std::string, data::VerifiedFile> verify() {
    std::map<std::string, data::VerifiedFile> out;
    for (const data::VerifiedFile& v : data::verify_dataset("mnist", dir.string(), manifest))
      out[v.name] = v;
    return out;
  }
};

TEST_F(MnistFixture, AFailedFetchNamesEveryMissingFile) {
  fs::remove_all(mirror);  // every download fails, as offline
  expect_error([&] { data::fetch_dataset("mnist", dir.string(), options); },
               {"train-images-idx3-ubyte.gz", "by hand", dir.string(),
                "also needs train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
                "t10k-labels-idx1-ubyte.gz there"});
}

TEST_F(MnistFixture, VerifyChecksTheUncompressedFilesTheReaderUses) {
  for (const std::string& n : names) write_file((dir / n).string(), raw[n]);
  ASSERT_TRUE(data::dataset_present("mnist", dir.string()));
  auto v = verify();
  ASSERT_EQ(v.size(), 4u);
  for (const std::string& n : names)
    EXPECT_EQ(v[n].status, "unverified") << n << " " << v[n].detail;
  // With the published .gz beside them, the raw files are checked against the data it holds; the
  // reader reads the raw file first, so a truncated one is what verify must report.
  for (const std::string& n : names) fs::copy_file(mirror / (n + ".gz"), dir / (n + ".gz"));
  std::vector<uint8_t> cut = raw[names[0]];
  cut.resize(cut.size() - 100);
  write_file((dir / names[0]).string(), cut);
  v = verify();
  ASSERT_EQ(v.size(), 4u);
  EXPECT_EQ(v[names[0]].status, "mismatch");
  EXPECT_NE(v[names[0]].detail.find("train-images-idx3-ubyte.gz"), std::string::npos)
      << v[names[0]].detail;
  for (size_t i = 1; i < names.size(); ++i) EXPECT_EQ(v[names[i]].status, "ok") << names[i];
  // Gzipped only: the manifest's files themselves.
  for (const std::string& n : names) fs::remove(dir / n);
  v = verify();
  for (const std::string& n : names) EXPECT_EQ(v[n + ".gz"].status, "ok") << n;
}

TEST_F(MnistFixture, VerifyReportsEveryFileWhenOneCannotBeRead) {
  for (const std::string& n : names) fs::copy_file(mirror / (n + ".gz"), dir / (n + ".gz"));
  // A truncated .gz (read to compare its data), a directory and a FIFO where files should be.
  const std::string gz = contents(mirror / (names[0] + ".gz"));
  fs::remove(dir / (names[0] + ".gz"));
  put(dir / (names[0] + ".gz"), gz.substr(0, gz.size() / 2));
  fs::remove(dir / (names[1] + ".gz"));
  fs::create_directory(dir / (names[1] + ".gz"));
  fs::remove(dir / (names[2] + ".gz"));
  ASSERT_EQ(::mkfifo((dir / (names[2] + ".gz")).c_str(), 0644), 0);
  auto v = verify();  // before the fix: an Error at the first file, or blocked on the FIFO
  ASSERT_EQ(v.size(), 4u);
  EXPECT_EQ(v[names[0] + ".gz"].status, "mismatch");
  EXPECT_EQ(v[names[1] + ".gz"].status, "unreadable");
  EXPECT_NE(v[names[1] + ".gz"].detail.find("directory"), std::string::npos);
  EXPECT_EQ(v[names[2] + ".gz"].status, "unreadable");
  EXPECT_NE(v[names[2] + ".gz"].detail.find("not a regular file"), std::string::npos);
  EXPECT_EQ(v[names[3] + ".gz"].status, "ok");
  expect_error([&] { data::md5_file((dir / (names[2] + ".gz")).string()); },
               {"not a regular file"});
}

TEST_F(MnistFixture, VerifyReportsADamagedGzipWhoseDataIsComparedAsUnreadable) {
  // A manifest with the data's MD5 (as for Debian's recompressed Fashion-MNIST): a .gz that
  // differs is decompressed to compare, and a truncated one cannot be.
  const fs::path gz = mirror / (names[0] + ".gz");
  put(manifest, R"({"mnist": [{"url": "file://)" + gz.string() + R"(", "md5": ")" +
                    data::md5_file(gz.string()) + R"(", "content_md5": ")" + std::string(32, 'a') +
                    R"("}]})");
  const std::string bytes = contents(gz);
  put(dir / (names[0] + ".gz"), bytes.substr(0, bytes.size() / 2));
  for (size_t i = 1; i < names.size(); ++i) write_file((dir / names[i]).string(), raw[names[i]]);
  auto v = verify();
  ASSERT_EQ(v.size(), 4u);
  EXPECT_EQ(v[names[0] + ".gz"].status, "unreadable");
  EXPECT_NE(v[names[0] + ".gz"].detail.find(names[0] + ".gz"), std::string::npos);
  for (size_t i = 1; i < names.size(); ++i) EXPECT_EQ(v[names[i]].status, "unverified");
}

}  // namespace
}  // namespace cyclone::testing::fetch_test
