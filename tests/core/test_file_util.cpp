// write_file_atomic on paths that are not plain files: a symlink is written through and kept; a
// directory, pipe or device is refused and left as it was.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "common/test_util.h"
#include "cyclone/core/file_util.h"

namespace cyclone {
namespace {

namespace fs = std::filesystem;

TEST(FileUtilTargets, SymlinkIsWrittenThroughAndKept) {
  testing::TempDir dir;
  fs::create_directories(dir.path() / "real");
  const std::string target = dir.file("real/target.txt");
  write_file_atomic(target, "original");
  fs::create_symlink("real/target.txt", dir.path() / "link.svg");
  fs::create_symlink("link.svg", dir.path() / "link2.svg");  // a chain of two

  write_file_atomic(dir.file("link2.svg"), "new");
  EXPECT_TRUE(fs::is_symlink(dir.path() / "link2.svg"));
  EXPECT_TRUE(fs::is_symlink(dir.path() / "link.svg"));
  EXPECT_EQ(read_file(target), "new");
  for (const auto& e : fs::recursive_directory_iterator(dir.path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos)
        << "temporary file left behind: " << e.path();

  // A dangling link creates the file it names.
  fs::create_symlink("real/later.txt", dir.path() / "dangling.svg");
  write_file_atomic(dir.file("dangling.svg"), "created");
  EXPECT_TRUE(fs::is_symlink(dir.path() / "dangling.svg"));
  EXPECT_EQ(read_file(dir.file("real/later.txt")), "created");
}

TEST(FileUtilTargets, PipeDirectoryAndLinkToThemAreRefusedUntouched) {
  testing::TempDir dir;
  const std::string pipe = dir.file("pipe.svg");
  ASSERT_EQ(::mkfifo(pipe.c_str(), 0644), 0);
  testing::expect_error([&] { write_file_atomic(pipe, "x"); },
                        {"cannot write " + pipe, "not a regular file"});
  EXPECT_TRUE(fs::is_fifo(pipe));

  fs::create_symlink("pipe.svg", dir.path() / "to_pipe.svg");
  testing::expect_error(
      [&] { write_file_atomic(dir.file("to_pipe.svg"), "x"); },
      {"cannot write " + dir.file("to_pipe.svg"), "not a regular file", "leads to " + pipe});
  EXPECT_TRUE(fs::is_symlink(dir.path() / "to_pipe.svg"));
  EXPECT_TRUE(fs::is_fifo(pipe));

  fs::create_directories(dir.path() / "sub");
  testing::expect_error([&] { write_file_atomic(dir.file("sub"), "x"); },
                        {"cannot write " + dir.file("sub"), "is a directory"});
  EXPECT_TRUE(fs::is_directory(dir.path() / "sub"));

  // A device node of our own (root only), so that nothing real is at stake.
  const std::string dev = dir.file("null.svg");
  if (::mknod(dev.c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0) {
    testing::expect_error([&] { write_file_atomic(dev, "x"); }, {dev, "not a regular file"});
    EXPECT_TRUE(fs::is_character_file(dev));
  }
  for (const auto& e : fs::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos)
        << "temporary file left behind: " << e.path();
}

// The checks a program runs on its output paths before any work, and make_directories' errors:
// each names the path and what is in the way, without creating or writing anything.
TEST(FileUtilTargets, OutputPathsCheckedBeforeAnyWork) {
  const cyclone::testing::TempDir dir;
  const std::string file = dir.file("a_file");
  write_file_atomic(file, "x");
  fs::create_directories(dir.file("a_dir"));
  EXPECT_NO_THROW(check_can_make_directories(dir.file("new/deeper")));
  EXPECT_NO_THROW(check_can_write_file(dir.file("new/deeper/out.json")));
  EXPECT_NO_THROW(check_can_write_file(file));
  EXPECT_FALSE(fs::exists(dir.file("new")));
  cyclone::testing::expect_error([&] { check_can_write_file(dir.file("a_dir")); },
                                 {dir.file("a_dir"), "it is a directory, not a file"});
  cyclone::testing::expect_error([&] { check_can_make_directories(file); },
                                 {"cannot create the directory " + file, "it is a file"});
  cyclone::testing::expect_error([&] { make_directories(file + "/sub/dir"); },
                                 {file + "/sub/dir", file + " is a file, not a directory"});
  cyclone::testing::expect_error([&] { check_can_write_file(file + "/x.csv"); },
                                 {"cannot create the directory " + file, "it is a file"});
  make_directories(dir.file("made/here"));
  EXPECT_TRUE(fs::is_directory(dir.file("made/here")));
}

// The commands messages tell the user to run (--resume DIR, --data_dir DIR) paste into a shell as
// one word whatever the path holds.
TEST(FileUtilShellQuote, PathsPasteAsOneShellWord) {
  EXPECT_EQ(shell_quote("/tmp/run-1/checkpoints"), "/tmp/run-1/checkpoints");
  EXPECT_EQ(shell_quote("data/cifar_10,v2@host:x=1+%"), "data/cifar_10,v2@host:x=1+%");
  EXPECT_EQ(shell_quote("/home/me/my runs"), "'/home/me/my runs'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote("~/x"), "'~/x'");
  EXPECT_EQ(shell_quote("$HOME;rm"), "'$HOME;rm'");
  EXPECT_EQ(shell_quote(""), "''");
  // What bash makes of each quoted word is the path itself.
  for (const std::string p : {"/home/me/my runs", "it's", "a\"b\\c", "*?[x]", "$(x)`y`"}) {
    const std::string cmd = "printf %s " + shell_quote(p);
    FILE* f = ::popen(cmd.c_str(), "r");
    ASSERT_NE(f, nullptr);
    char buf[256] = {};
    const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    EXPECT_EQ(::pclose(f), 0) << cmd;
    EXPECT_EQ(std::string(buf, n), p) << cmd;
  }
}

}  // namespace
}  // namespace cyclone
