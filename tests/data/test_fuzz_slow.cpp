// Runs the libFuzzer target of the data parsers (data/fuzz/fuzz_parsers.cpp) for a bounded time
// from the committed seed corpus (tests/data/fuzz/corpus). Labelled slow by its name. Skips, with
// the reason, when the target was not built (no clang with -fsanitize=fuzzer at configure time).
#include <unistd.h>

#include <cstdlib>

#include "common/test_util.h"
#include "data/data_test_util.h"

namespace cyclone::testing {
namespace {

TEST(FuzzSlow, IdxCifarGzipParsersSurvive) {
  const auto exe = std::filesystem::read_symlink("/proc/self/exe").parent_path();
  const auto fuzzer = exe / "cyclone_fuzz_parsers";
  if (!std::filesystem::exists(fuzzer)) {
    GTEST_SKIP() << fuzzer << " was not built: configure with a clang++ that supports "
                 << "-fsanitize=fuzzer (Debian: clang, libclang-rt-dev)";
  }
  // New inputs go to a scratch directory (the first one named), never into the source tree.
  TempDir scratch;
  const std::string log = scratch.file("fuzz.log");
  const int seconds =
      std::getenv("CYCLONE_FUZZ_SECONDS") ? std::atoi(std::getenv("CYCLONE_FUZZ_SECONDS")) : 25;
  const std::string cmd = fuzzer.string() + " -max_total_time=" + std::to_string(seconds) +
                          " -rss_limit_mb=2048 -timeout=10 -seed=1 -print_final_stats=1 " +
                          scratch.path().string() + " " +
                          (test_data_dir() / "fuzz" / "corpus").string() + " > " + log + " 2>&1";
  const int rc = std::system(cmd.c_str());
  const auto out = read_bytes(log);
  const std::string text(out.begin(), out.end());
  EXPECT_EQ(rc, 0) << "the fuzzer found a failing input; its log:\n"
                   << text.substr(text.size() > 6000 ? text.size() - 6000 : 0);
  std::printf(
      "[ fuzz ] %s\n",
      text.substr(text.rfind("Done") == std::string::npos ? text.size() : text.rfind("Done"))
          .c_str());
}

}  // namespace
}  // namespace cyclone::testing
