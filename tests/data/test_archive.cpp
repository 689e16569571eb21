// extract_members on archives the tests write with libarchive's write API: exactly the wanted
// files land, whole, and every hostile or broken archive is an Error that writes nothing.
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "cyclone/core/error.h"
#include "cyclone/data/archive.h"
#include "data/data_test_util.h"

namespace cyclone::testing {
namespace {

namespace fs = std::filesystem;

struct Member {
  std::string path;
  unsigned type = AE_IFREG;  // AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFIFO, AE_IFCHR
  std::string data;
  std::string symlink;   // for AE_IFLNK
  std::string hardlink;  // a hard link entry to this earlier member
};

Member reg(std::string path, std::string data) {
  return {std::move(path), AE_IFREG, std::move(data), "", ""};
}
Member dir(std::string path) { return {std::move(path), AE_IFDIR, "", "", ""}; }
Member symlink_to(std::string path, std::string target) {
  return {std::move(path), AE_IFLNK, "", std::move(target), ""};
}
Member hardlink_to(std::string path, std::string target) {
  return {std::move(path), AE_IFREG, "", "", std::move(target)};
}
Member special(std::string path, unsigned type) { return {std::move(path), type, "", "", ""}; }

// Writes a pax tar of `members`, gzipped unless `gzip` is false.
void write_tar(const std::string& path, const std::vector<Member>& members, bool gzip = true) {
  struct archive* a = archive_write_new();
  ASSERT_NE(a, nullptr);
  if (gzip) {
    ASSERT_EQ(archive_write_add_filter_gzip(a), ARCHIVE_OK);
  }
  ASSERT_EQ(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK) << archive_error_string(a);
  for (const Member& m : members) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, m.path.c_str());
    archive_entry_set_filetype(e, m.type);
    archive_entry_set_perm(e, m.type == AE_IFDIR ? 0755 : 0644);
    if (m.type == AE_IFLNK) archive_entry_set_symlink(e, m.symlink.c_str());
    if (!m.hardlink.empty()) archive_entry_set_hardlink(e, m.hardlink.c_str());
    if (m.type == AE_IFCHR) archive_entry_set_rdev(e, makedev(1, 3));
    const bool has_data = m.type == AE_IFREG && m.hardlink.empty();
    archive_entry_set_size(e, has_data ? static_cast<la_int64_t>(m.data.size()) : 0);
    ASSERT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
    if (has_data && !m.data.empty()) {
      ASSERT_EQ(archive_write_data(a, m.data.data(), m.data.size()),
                static_cast<la_ssize_t>(m.data.size()));
    }
    archive_entry_free(e);
  }
  ASSERT_EQ(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
}

std::string pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (char& c : s) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    c = static_cast<char>(x);
  }
  return s;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

using ::cyclone::testing::expect_error;

// An archive laid out like cifar-10-binary.tar.gz, and an empty destination beside it.
struct Fixture {
  TempDir tmp;
  std::string archive = tmp.file("ds.tar.gz");
  fs::path dest = tmp.path() / "dest";
  Fixture() { fs::create_directories(dest); }
};

std::vector<Member> cifar_like() {
  return {dir("cifar-10-batches-bin/"),
          reg("cifar-10-batches-bin/data_batch_1.bin", pattern(70000, 1)),
          reg("cifar-10-batches-bin/readme.html", "<html>unwanted</html>"),
          reg("cifar-10-batches-bin/test_batch.bin", pattern(30001, 2))};
}

TEST(ArchiveTest, ExtractsExactlyTheWantedFilesFlattened) {
  for (bool gzip : {true, false}) {
    Fixture fx;
    write_tar(fx.archive, cifar_like(), gzip);
    const auto names =
        data::extract_members(fx.archive, fx.dest.string(), {"test_batch.bin", "data_batch_1.bin"});
    EXPECT_EQ(names, (std::vector<std::string>{"test_batch.bin", "data_batch_1.bin"}));
    EXPECT_EQ(listing(fx.dest), (std::vector<std::string>{"data_batch_1.bin", "test_batch.bin"}))
        << "gzip " << gzip;
    EXPECT_EQ(slurp(fx.dest / "data_batch_1.bin"), pattern(70000, 1));
    EXPECT_EQ(slurp(fx.dest / "test_batch.bin"), pattern(30001, 2));
  }
}

TEST(ArchiveTest, ReplacesAnOlderFileAndHandlesEmptyMembers) {
  Fixture fx;
  write_tar(fx.archive, {reg("d/a.bin", "new"), reg("d/empty.bin", "")});
  { std::ofstream(fx.dest / "a.bin") << "old contents"; }
  data::extract_members(fx.archive, fx.dest.string(), {"a.bin", "empty.bin"});
  EXPECT_EQ(slurp(fx.dest / "a.bin"), "new");
  EXPECT_TRUE(fs::exists(fx.dest / "empty.bin"));
  EXPECT_EQ(fs::file_size(fx.dest / "empty.bin"), 0u);
  EXPECT_EQ(listing(fx.dest), (std::vector<std::string>{"a.bin", "empty.bin"}));
}

TEST(ArchiveTest, DotDotMemberIsRefusedAndNothingIsWritten) {
  Fixture fx;
  write_tar(fx.archive, {reg("ok.bin", "fine"), reg("../escape", "evil")});
  expect_error([&] { data::extract_members(fx.archive, fx.dest.string(), {"ok.bin"}); },
               {"../escape", fx.archive, ".."});
  EXPECT_TRUE(listing(fx.dest).empty());
  EXPECT_FALSE(fs::exists(fx.tmp.path() / "escape"));
  // Even when the hostile member is the one wanted, and when ".." sits mid-path.
  write_tar(fx.archive, {reg("a/../../escape", "evil")});
  expect_error([&] { data::extract_members(fx.archive, fx.dest.string(), {"escape"}); },
               {"a/../../escape", fx.archive});
  EXPECT_TRUE(listing(fx.dest).empty());
  EXPECT_FALSE(fs::exists(fx.tmp.path() / "escape"));
}

TEST(ArchiveTest, AbsolutePathIsRefused) {
  Fixture fx;
  write_tar(fx.archive, {reg("/abs/path", "evil"), reg("ok.bin", "fine")});
  expect_error([&] { data::extract_members(fx.archive, fx.dest.string(), {"ok.bin"}); },
               {"/abs/path", fx.archive, "absolute"});
  EXPECT_TRUE(listing(fx.dest).empty());
  EXPECT_FALSE(fs::exists("/abs/path"));
}

TEST(ArchiveTest, SymlinkIsRefusedAndNoLinkIsCreated) {
  Fixture fx;
  write_tar(fx.archive, {symlink_to("d/link.bin", "/etc/passwd"), reg("d/ok.bin", "x")});
  expect_error(
      [&] {
        data::extract_members(fx.archive, fx.dest.string(), {"link.bin", "ok.bin"});
      },
      {"d/link.bin", fx.archive, "symbolic link"});
  EXPECT_TRUE(listing(fx.dest).empty());
  struct stat st;
  EXPECT_NE(::lstat((fx.dest / "link.bin").c_str(), &st), 0);
}

TEST(ArchiveTest, HardLinkIsRefused) {
  Fixture fx;
  write_tar(fx.archive, {reg("d/a.bin", "data"), hardlink_to("d/b.bin", "d/a.bin")});
  expect_error([&] { data::extract_members(fx.archive, fx.dest.string(), {"a.bin"}); },
               {"d/b.bin", fx.archive, "hard link"});
  EXPECT_TRUE(listing(fx.dest).empty());
}

TEST(ArchiveTest, DevicesAndFifosAreRefused) {
  for (unsigned type : {unsigned{AE_IFIFO}, unsigned{AE_IFCHR}}) {
    Fixture fx;
    write_tar(fx.archive, {reg("d/ok.bin", "x"), special("d/special", type)});
    expect_error([&] { data::extract_members(fx.archive, fx.dest.string(), {"ok.bin"}); },
                 {"d/special", fx.archive, type == AE_IFIFO ? "fifo" : "device"});
    EXPECT_TRUE(listing(fx.dest).empty());
  }
}

TEST(ArchiveTest, MissingWantedMembersAreListed) {
  Fixture fx;
  write_tar(fx.archive, cifar_like());
  expect_error(
      [&] {
        data::extract_members(fx.archive, fx.dest.string(),
                              {"test_batch.bin", "data_batch_2.bin", "data_batch_3.bin"});
      },
      {fx.archive, "data_batch_2.bin, data_batch_3.bin"});
  EXPECT_TRUE(listing(fx.dest).empty());
  // A directory of the wanted name is not the wanted file.
  expect_error(
      [&] { data::extract_members(fx.archive, fx.dest.string(), {"cifar-10-batches-bin"}); },
      {"cifar-10-batches-bin"});
}

TEST(ArchiveTest, TruncatedArchiveIsAnErrorAndLeavesNothing) {
  for (bool gzip : {true, false}) {
    Fixture fx;
    write_tar(fx.archive, {reg("d/a.bin", pattern(100000, 3)), reg("d/b.bin", pattern(90000, 4))},
              gzip);
    const std::string whole = slurp(fx.archive);
    {
      std::ofstream(fx.archive, std::ios::binary | std::ios::trunc)
          << whole.substr(0, whole.size() / 2);
    }
    expect_error(
        [&] {
          data::extract_members(fx.archive, fx.dest.string(), {"a.bin", "b.bin"});
        },
        {fx.archive});
    EXPECT_TRUE(listing(fx.dest).empty()) << "gzip " << gzip;
  }
}

TEST(ArchiveTest, OversizedMemberIsRefused) {
  Fixture fx;
  write_tar(fx.archive, {reg("d/big.bin", pattern(5000, 5)), reg("d/ok.bin", "x")});
  expect_error([&] { data::extract_members(fx.archive, fx.dest.string(), {"ok.bin"}, 4096); },
               {"d/big.bin", fx.archive, "4096"});
  EXPECT_TRUE(listing(fx.dest).empty());
}

TEST(ArchiveTest, TwoMembersWithTheWantedNameAreAmbiguous) {
  Fixture fx;
  write_tar(fx.archive, {reg("a/x.bin", "one"), reg("b/x.bin", "two")});
  expect_error([&] { data::extract_members(fx.archive, fx.dest.string(), {"x.bin"}); },
               {"a/x.bin", "b/x.bin", fx.archive});
  EXPECT_TRUE(listing(fx.dest).empty());
}

TEST(ArchiveTest, BadArchiveFilesNameTheArchive) {
  Fixture fx;
  expect_error([&] { data::extract_members(fx.tmp.file("nope.tar.gz"), fx.dest.string(), {"a"}); },
               {"nope.tar.gz"});
  { std::ofstream(fx.archive, std::ios::binary) << pattern(10000, 6); }
  expect_error([&] { data::extract_members(fx.archive, fx.dest.string(), {"a"}); }, {fx.archive});
  EXPECT_TRUE(listing(fx.dest).empty());
}

TEST(ArchiveTest, WantedNamesMustBePlainFileNames) {
  Fixture fx;
  write_tar(fx.archive, cifar_like());
  for (const std::string bad : {"../x", "a/b", "", ".."}) {
    expect_error([&] { data::extract_members(fx.archive, fx.dest.string(), {bad}); },
                 {"\"" + bad + "\""});
  }
  EXPECT_TRUE(listing(fx.dest).empty());
}

TEST(ArchiveTest, MissingOrReadOnlyDestinationIsNamed) {
  Fixture fx;
  write_tar(fx.archive, cifar_like());
  const std::string missing = (fx.tmp.path() / "no" / "such").string();
  expect_error([&] { data::extract_members(fx.archive, missing, {"test_batch.bin"}); }, {missing});
  EXPECT_FALSE(fs::exists(missing));
  // root ignores permission bits, so as root a read-only filesystem stands in.
  std::string read_only = "/proc";
  if (::geteuid() != 0) {
    read_only = fx.dest.string();
    fs::permissions(fx.dest, fs::perms::owner_read | fs::perms::owner_exec);
  }
  expect_error([&] { data::extract_members(fx.archive, read_only, {"test_batch.bin"}); },
               {read_only});
  fs::permissions(fx.dest, fs::perms::owner_all);
  EXPECT_TRUE(listing(fx.dest).empty());
}

}  // namespace
}  // namespace cyclone::testing
