// kernels::AlgoCache, the convolution algorithm table the GPU code keeps (and, with
// $CYCLONE_CUDNN_CACHE, stores): choices survive a restart under the same fingerprint, a file
// from another cuDNN / GPU or a corrupt, truncated or malformed one is ignored with a note naming
// it (never a crash) and rewritten on the next insert, and a file that cannot be written leaves
// the table working in memory.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "common/test_util.h"
#include "cyclone/kernels/algo_cache.h"

namespace cyclone {
namespace {

using kernels::AlgoCache;
using kernels::AlgoChoice;
using kernels::AlgoKey;

AlgoKey key(int64_t pass, int64_t n) {
  return {pass, 0, 0, 1, n, 160, 32, 32, 160, 3, 3, 32, 1, 1, 1, 1, 1, 1, 0};
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(AlgoCache, ChoicesSurviveARestartUnderTheSameFingerprint) {
  testing::TempDir dir;
  const std::string path = dir.file("cudnn.json");
  {
    AlgoCache c(path, "cudnn 91900; NVIDIA H100 sm_90");
    EXPECT_EQ(c.size(), 0u);
    EXPECT_EQ(c.note(), "") << "a missing file is the first run, not a problem";
    c.insert(key(0, 128), AlgoChoice{6, 1, 1 << 20});
    c.insert(key(2, 128), AlgoChoice{1, 2, 0});
    c.insert(key(0, 128), AlgoChoice{7, 1, 4096});  // replaced
    EXPECT_EQ(c.find(key(0, 128)), (AlgoChoice{7, 1, 4096}));
  }
  AlgoCache again(path, "cudnn 91900; NVIDIA H100 sm_90");
  EXPECT_EQ(again.size(), 2u);
  EXPECT_EQ(again.note(), "");
  EXPECT_EQ(again.find(key(0, 128)), (AlgoChoice{7, 1, 4096}));
  EXPECT_EQ(again.find(key(2, 128)), (AlgoChoice{1, 2, 0}));
  EXPECT_FALSE(again.find(key(1, 128)).has_value());
  EXPECT_FALSE(again.find(key(0, 64)).has_value());
  // Memory only: nothing is written anywhere.
  AlgoCache mem("", "x");
  mem.insert(key(0, 1), AlgoChoice{2, 0, 0});
  EXPECT_EQ(mem.find(key(0, 1)), (AlgoChoice{2, 0, 0}));
}

TEST(AlgoCache, AnotherFingerprintIsIgnoredThenReplaced) {
  testing::TempDir dir;
  const std::string path = dir.file("cudnn.json");
  AlgoCache(path, "cudnn 90100; NVIDIA A100 sm_80").insert(key(0, 8), AlgoChoice{3, 1, 0});
  AlgoCache other(path, "cudnn 91900; NVIDIA H100 sm_90");
  EXPECT_EQ(other.size(), 0u);
  EXPECT_NE(other.note().find(path), std::string::npos) << other.note();
  EXPECT_NE(other.note().find("A100"), std::string::npos) << other.note();
  other.insert(key(0, 8), AlgoChoice{5, 1, 0});
  AlgoCache third(path, "cudnn 91900; NVIDIA H100 sm_90");
  EXPECT_EQ(third.find(key(0, 8)), (AlgoChoice{5, 1, 0}));
}

TEST(AlgoCache, CorruptTruncatedOrMalformedFilesAreIgnoredWithANote) {
  testing::TempDir dir;
  const std::string path = dir.file("cudnn.json");
  const std::string fp = "fp";
  AlgoCache(path, fp).insert(key(0, 8), AlgoChoice{5, 1, 0});
  std::string good;
  {
    std::ifstream in(path);
    std::getline(in, good);
  }
  const std::string bad_cases[] = {
      "not json at all",
      good.substr(0, good.size() / 2),                          // truncated
      R"({"version": 1, "fingerprint": "fp", "entries": []})",  // keys without the layout
      R"({"version": 2, "fingerprint": "fp", "entries": [{"key": [1, 2, 3], "algo": 1,
          "math": 0, "workspace": 0}]})",
      R"({"version": 2, "fingerprint": "fp", "entries": [{"key": [0,0,0,1,8,160,32,32,160,3,3,32,
          1,1,1,1,1,1,0], "algo": "fast", "math": 0, "workspace": 0}]})",
      R"({"version": 2, "fingerprint": "fp", "entries": [{"key": [0,0,0,1,8,160,32,32,160,3,3,32,
          1,1,1,1,1,1,0], "algo": -4, "math": 0, "workspace": 0}]})",
      R"({"version": 2, "fingerprint": "fp"})",
  };
  for (const std::string& text : bad_cases) {
    SCOPED_TRACE(text);
    write(path, text);
    AlgoCache c(path, fp);
    EXPECT_EQ(c.size(), 0u);
    EXPECT_NE(c.note().find(path), std::string::npos) << c.note();
    c.insert(key(1, 8), AlgoChoice{2, 0, 0});  // rewritten whole and valid
    EXPECT_EQ(AlgoCache(path, fp).size(), 1u);
  }
}

TEST(AlgoCache, AFileThatCannotBeWrittenLeavesTheTableInMemory) {
  testing::TempDir dir;
  const std::string path = dir.file("no_such_dir/cudnn.json");
  AlgoCache c(path, "fp");
  c.insert(key(0, 8), AlgoChoice{4, 1, 0});
  c.insert(key(0, 16), AlgoChoice{4, 1, 0});
  EXPECT_EQ(c.find(key(0, 8)), (AlgoChoice{4, 1, 0}));
  EXPECT_EQ(c.size(), 2u);
  EXPECT_NE(c.note().find("cannot write"), std::string::npos) << c.note();
  EXPECT_NE(c.note().find(path), std::string::npos) << c.note();
}

}  // namespace
}  // namespace cyclone
