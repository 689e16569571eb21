// The dataset manifest: the built-in entries, the JSON format (round trip, every error names the
// origin, dataset and key), and the --manifest / $CYCLONE_DATASET_MANIFEST overrides.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "cyclone/core/error.h"
#include "cyclone/data/manifest.h"
#include "cyclone/data/registry.h"
#include "data/data_test_util.h"

namespace cyclone::testing {
namespace {

using data::Manifest;
using data::RemoteFile;

bool lower_hex32(const std::string& s) {
  if (s.size() != 32) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

void expect_same(const Manifest& a, const Manifest& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, files] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    const auto& other = b.at(name);
    ASSERT_EQ(files.size(), other.size()) << name;
    for (size_t i = 0; i < files.size(); ++i) {
      EXPECT_EQ(files[i].name, other[i].name);
      EXPECT_EQ(files[i].urls, other[i].urls);
      EXPECT_EQ(files[i].md5, other[i].md5);
      EXPECT_EQ(files[i].size, other[i].size);
    }
  }
}

using ::cyclone::testing::expect_error;

const char* kMd5 = "0123456789abcdef0123456789abcdef";

TEST(ManifestTest, BuiltinListsTheFourDatasetsWithValidFields) {
  const Manifest& m = data::builtin_manifest();
  std::vector<std::string> names;
  for (const auto& [name, files] : m) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"cifar10", "cifar100", "fashion_mnist", "mnist"}));
  for (const auto& [dataset, files] : m) {
    ASSERT_FALSE(files.empty()) << dataset;
    for (const RemoteFile& f : files) {
      EXPECT_TRUE(lower_hex32(f.md5)) << dataset << " " << f.name;
      EXPECT_GT(f.size, 0) << dataset << " " << f.name;
      ASSERT_FALSE(f.urls.empty()) << dataset << " " << f.name;
      for (const std::string& u : f.urls) {
        EXPECT_TRUE(u.rfind("https://", 0) == 0 || u.rfind("http://", 0) == 0) << u;
        EXPECT_EQ(u.substr(u.rfind('/') + 1), f.name) << u;
      }
    }
  }
  ASSERT_EQ(m.at("cifar10").size(), 1u);
  EXPECT_EQ(m.at("cifar10")[0].md5, "c32a1d4ab5d03f1284b67883e8d87530");
  EXPECT_EQ(m.at("cifar10")[0].size, 170052171);
  EXPECT_TRUE(m.at("cifar10")[0].is_archive());
  EXPECT_EQ(m.at("cifar100")[0].md5, "03b5dce01913d631647c71ecec9e9cb8");
  EXPECT_TRUE(m.at("cifar100")[0].is_archive());
  for (const char* ds : {"mnist", "fashion_mnist"}) {
    std::vector<std::string> files;
    for (const RemoteFile& f : m.at(ds)) {
      files.push_back(f.name);
      EXPECT_FALSE(f.is_archive()) << f.name;
    }
    EXPECT_EQ(files,
              (std::vector<std::string>{"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}));
  }
  // MNIST: the S3 mirror first, the original site second.
  for (const RemoteFile& f : m.at("mnist")) {
    ASSERT_EQ(f.urls.size(), 2u);
    EXPECT_EQ(f.urls[0], "https://ossci-datasets.s3.amazonaws.com/mnist/" + f.name);
    EXPECT_EQ(f.urls[1], "http://yann.lecun.com/exdb/mnist/" + f.name);
  }
  EXPECT_EQ(m.at("mnist")[3].md5, "ec29112dd5afa0611ce80d1b7f02629c");
  EXPECT_EQ(m.at("fashion_mnist")[0].size, 26421880);
}

TEST(ManifestTest, RoundTripsThroughJson) {
  const Manifest& m = data::builtin_manifest();
  const std::string text = data::manifest_json(m);
  expect_same(data::parse_manifest(text, "round-trip"), m);
  // A file without a published size round-trips too.
  Manifest small;
  small["cifar10"] = {RemoteFile{"x.tar", {"file:///tmp/x.tar", "https://h/x.tar"}, kMd5, -1, ""}};
  expect_same(data::parse_manifest(data::manifest_json(small), "small"), small);
  EXPECT_EQ(data::manifest_json(small).find("size"), std::string::npos);
}

TEST(ManifestTest, UrlOrUrlsMd5LowercasedSizeOptional) {
  const Manifest m = data::parse_manifest(
      R"({"cifar10": [{"url": "https://a.example/c.tar.gz",
                       "md5": "C32A1D4AB5D03F1284B67883E8D87530", "size": 12}],
          "mnist": [{"urls": ["http://m1/x.gz", "file:///srv/x.gz"], "md5": ")" +
          std::string(kMd5) + R"("}]})",
      "t.json");
  ASSERT_EQ(m.size(), 2u);
  const RemoteFile& c = m.at("cifar10")[0];
  EXPECT_EQ(c.urls, (std::vector<std::string>{"https://a.example/c.tar.gz"}));
  EXPECT_EQ(c.md5, "c32a1d4ab5d03f1284b67883e8d87530");
  EXPECT_EQ(c.size, 12);
  EXPECT_EQ(c.name, "c.tar.gz");
  const RemoteFile& x = m.at("mnist")[0];
  EXPECT_EQ(x.urls, (std::vector<std::string>{"http://m1/x.gz", "file:///srv/x.gz"}));
  EXPECT_EQ(x.size, -1);
  EXPECT_EQ(x.name, "x.gz");
}

TEST(ManifestTest, NameIsDerivedFromTheFirstUrlOrGiven) {
  auto one = [](const std::string& entry) {
    return data::parse_manifest(R"({"cifar100": [)" + entry + "]}", "n.json").at("cifar100")[0];
  };
  const std::string md5 = std::string(R"("md5": ")") + kMd5 + "\"";
  EXPECT_EQ(one(R"({"url": "https://h/p/q/file.tar.gz?sig=abc&x=1#frag", )" + md5 + "}").name,
            "file.tar.gz");
  EXPECT_EQ(one(R"({"urls": ["https://h/first.bin", "https://h/second.bin"], )" + md5 + "}").name,
            "first.bin");
  EXPECT_EQ(one(R"({"url": "https://h/download?id=7", "name": "c100.tar.gz", )" + md5 + "}").name,
            "c100.tar.gz");
  expect_error([&] { one(R"({"url": "https://host", )" + md5 + "}"); },
               {"n.json", "cifar100", "\"url\"", "name"});
  expect_error([&] { one(R"({"url": "https://host/dir/", )" + md5 + "}"); },
               {"n.json", "cifar100", "\"url\""});
}

TEST(ManifestTest, EveryErrorNamesOriginDatasetAndKey) {
  const std::string md5 = std::string(R"("md5": ")") + kMd5 + "\"";
  const std::string url = R"("url": "https://h/f.bin")";
  struct Case {
    std::string json;
    std::vector<std::string> parts;
  };
  const std::vector<Case> cases = {
      {"{not json", {"bad.json", "JSON"}},
      {"[1, 2]", {"bad.json", "object"}},
      {R"({"imagenet": []})", {"bad.json", "imagenet", "unknown dataset", "cifar10"}},
      {R"({"synthetic": [{)" + url + ", " + md5 + "}]}", {"bad.json", "synthetic"}},
      {R"({"mnist": []})", {"bad.json", "mnist", "non-empty"}},
      {R"({"mnist": {"url": "x"}})", {"bad.json", "mnist"}},
      {R"({"mnist": [42]})", {"bad.json", "mnist", "file 0"}},
      {R"({"mnist": [{)" + url + ", " + md5 + R"(, "sha": "x"}]})",
       {"bad.json", "mnist", "\"sha\""}},
      {R"({"mnist": [{)" + md5 + "}]}", {"bad.json", "mnist", "\"url\"", "\"urls\""}},
      {R"({"mnist": [{)" + url + R"(, "urls": ["https://h/f.bin"], )" + md5 + "}]}",
       {"bad.json", "mnist", "\"url\"", "both"}},
      {R"({"mnist": [{"url": 5, )" + md5 + "}]}", {"bad.json", "mnist", "\"url\""}},
      {R"({"mnist": [{"urls": [], )" + md5 + "}]}", {"bad.json", "mnist", "\"urls\""}},
      {R"({"mnist": [{"urls": ["https://h/a", 3], )" + md5 + "}]}",
       {"bad.json", "mnist", "\"urls\""}},
      {R"({"mnist": [{"url": "ftp://h/f.bin", )" + md5 + "}]}",
       {"bad.json", "mnist", "\"url\"", "ftp://h/f.bin"}},
      {R"({"mnist": [{"urls": ["https://h/f.bin", "/local/f.bin"], )" + md5 + "}]}",
       {"bad.json", "mnist", "\"urls\"", "/local/f.bin"}},
      {R"({"mnist": [{"url": "https://h/f bin", )" + md5 + "}]}", {"bad.json", "mnist", "\"url\""}},
      {R"({"mnist": [{)" + url + "}]}", {"bad.json", "mnist", "\"md5\""}},
      {R"({"mnist": [{)" + url + R"(, "md5": "abc"}]})", {"bad.json", "mnist", "\"md5\"", "abc"}},
      {R"({"mnist": [{)" + url + R"(, "md5": "0123456789abcdef0123456789abcdeg"}]})",
       {"bad.json", "mnist", "\"md5\""}},
      {R"({"mnist": [{)" + url + R"(, "md5": 7}]})", {"bad.json", "mnist", "\"md5\""}},
      {R"({"mnist": [{)" + url + ", " + md5 + R"(, "size": -1}]})",
       {"bad.json", "mnist", "\"size\""}},
      {R"({"mnist": [{)" + url + ", " + md5 + R"(, "size": 1.5}]})",
       {"bad.json", "mnist", "\"size\""}},
      {R"({"mnist": [{)" + url + ", " + md5 + R"(, "size": "12"}]})",
       {"bad.json", "mnist", "\"size\""}},
      {R"({"mnist": [{)" + url + ", " + md5 + R"(, "name": "../evil"}]})",
       {"bad.json", "mnist", "\"name\"", "../evil"}},
      {R"({"mnist": [{)" + url + ", " + md5 + R"(, "name": 3}]})",
       {"bad.json", "mnist", "\"name\""}},
      {R"({"mnist": [{)" + url + ", " + md5 + "}, {" + url + ", " + md5 + "}]}",
       {"bad.json", "mnist", "file 1", "\"name\"", "f.bin"}},
      // 400000 levels crashed datasets (SIGSEGV) in the tree's recursion; 64 are allowed.
      {R"({"mnist": )" + std::string(400000, '[') + std::string(400000, ']') + "}",
       {"manifest bad.json is nested deeper than 64 levels"}},
      {R"({"mnist": )" + std::string(63, '[') + std::string(63, ']') + "}",
       {"bad.json", "mnist", "file 0"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.json);
    expect_error([&] { data::parse_manifest(c.json, "bad.json"); }, c.parts);
  }
}

// MD5 of a file by the system's md5sum (independent of the code under test); "" when unavailable.
std::string md5sum_of(const std::string& path) {
  const std::string cmd = "md5sum '" + path + "' 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return "";
  char buf[33] = {};
  const size_t n = std::fread(buf, 1, 32, p);
  ::pclose(p);
  return n == 32 ? std::string(buf, 32) : "";
}

// Debian's dataset-fashion-mnist ships Zalando's files with the gzip header rewritten (no FNAME
// field, a 2020 MTIME, the same deflate stream). Restoring the original header (RFC 1952:
// FLG.FNAME, the MTIME of Zalando's files, XFL 0, OS 3 (Unix), the name) must give back exactly the
// published bytes, so this checks the built-in MD5s and sizes against real data without a network.
TEST(ManifestTest, FashionMnistEntriesMatchDebiansFilesWithTheirOriginalGzipHeader) {
  const std::string dir = data::dataset_info("fashion_mnist").default_dir;
  if (!std::filesystem::exists(dir + "/train-labels-idx1-ubyte.gz")) {
    GTEST_SKIP() << dir << " is absent: install Debian's dataset-fashion-mnist package to run this";
  }
  const std::map<std::string, uint32_t> mtime = {
      {"train-images-idx3-ubyte.gz", 1504176606u},
      {"train-labels-idx1-ubyte.gz", 1504176606u},
      {"t10k-images-idx3-ubyte.gz", 1504176627u},
      {"t10k-labels-idx1-ubyte.gz", 1504176627u},
  };
  TempDir tmp;
  const auto& files = data::builtin_manifest().at("fashion_mnist");
  ASSERT_EQ(files.size(), 4u);
  for (const RemoteFile& f : files) {
    SCOPED_TRACE(f.name);
    const std::vector<uint8_t> debian = read_bytes(dir + "/" + f.name);
    ASSERT_GT(debian.size(), 10u);
    ASSERT_EQ(debian[3], 0) << "Debian's gzip header changed (FLG); this check no longer applies";
    const std::string stem = f.name.substr(0, f.name.size() - 3);  // the name gzip recorded
    std::vector<uint8_t> original = {0x1f, 0x8b, 0x08, 0x08};
    for (int s = 0; s < 32; s += 8) original.push_back(static_cast<uint8_t>(mtime.at(f.name) >> s));
    original.push_back(0x00);  // XFL
    original.push_back(0x03);  // OS: Unix
    original.insert(original.end(), stem.begin(), stem.end());
    original.push_back(0);
    original.insert(original.end(), debian.begin() + 10, debian.end());
    EXPECT_EQ(static_cast<int64_t>(original.size()), f.size);
    const std::string path = tmp.file(f.name);
    write_file(path, original);
    const std::string md5 = md5sum_of(path);
    if (md5.empty()) GTEST_SKIP() << "md5sum is not available";
    EXPECT_EQ(md5, f.md5);
  }
}

// Sets an environment variable for one scope and restores the old value after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(ManifestTest, EnvironmentAndExplicitPathOverrideMergingWithBuiltin) {
  TempDir dir;
  const std::string env_file = dir.file("env.json"), arg_file = dir.file("arg.json");
  std::ofstream(env_file)
      << R"({"cifar10": [{"url": "file:///mirror/cifar-10-binary.tar.gz", "md5": ")" << kMd5
      << R"(", "size": 5}]})";
  std::ofstream(arg_file) << R"({"mnist": [{"url": "https://local/m.gz", "md5": ")" << kMd5
                          << R"("}]})";
  const Manifest& builtin = data::builtin_manifest();
  {
    ScopedEnv env("CYCLONE_DATASET_MANIFEST", nullptr);
    expect_same(data::active_manifest(), builtin);
    ScopedEnv empty("CYCLONE_DATASET_MANIFEST", "");
    expect_same(data::active_manifest(), builtin);
  }
  {
    ScopedEnv env("CYCLONE_DATASET_MANIFEST", env_file.c_str());
    const Manifest m = data::active_manifest();
    ASSERT_EQ(m.size(), 4u);
    ASSERT_EQ(m.at("cifar10").size(), 1u);
    EXPECT_EQ(m.at("cifar10")[0].urls,
              (std::vector<std::string>{"file:///mirror/cifar-10-binary.tar.gz"}));
    EXPECT_EQ(m.at("cifar10")[0].size, 5);
    EXPECT_EQ(m.at("cifar10")[0].name, "cifar-10-binary.tar.gz");
    expect_same({{"mnist", m.at("mnist")}}, {{"mnist", builtin.at("mnist")}});
    expect_same({{"cifar100", m.at("cifar100")}}, {{"cifar100", builtin.at("cifar100")}});

    // An explicit path wins over the environment.
    const Manifest a = data::active_manifest(arg_file);
    ASSERT_EQ(a.at("mnist").size(), 1u);
    EXPECT_EQ(a.at("mnist")[0].name, "m.gz");
    expect_same({{"cifar10", a.at("cifar10")}}, {{"cifar10", builtin.at("cifar10")}});
  }
  // The built-in manifest itself is untouched by overrides.
  EXPECT_EQ(builtin.at("cifar10")[0].urls[0],
            "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz");
  // A missing or bad override file is an Error naming it, not a silent fallback.
  expect_error([&] { data::active_manifest(dir.file("missing.json")); }, {"missing.json"});
  {
    ScopedEnv env("CYCLONE_DATASET_MANIFEST", dir.file("missing2.json").c_str());
    expect_error([&] { data::active_manifest(); }, {"missing2.json"});
  }
  std::ofstream(dir.file("bad.json"))
      << R"({"cifar10": [{"url": "gopher://x/y", "md5": ")" << kMd5 << R"("}]})";
  expect_error([&] { data::active_manifest(dir.file("bad.json")); },
               {"bad.json", "cifar10", "\"url\""});
}

}  // namespace
}  // namespace cyclone::testing
