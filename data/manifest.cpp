#include "cyclone/data/manifest.h"

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cyclone/core/error.h"
#include "cyclone/core/file_util.h"
#include "cyclone/core/json_depth.h"
#include "cyclone/core/spelling.h"
#include "cyclone/data/registry.h"

namespace cyclone::data {
namespace {

using nlohmann::json;

RemoteFile file(std::string name, std::vector<std::string> urls, std::string md5, int64_t size) {
  RemoteFile f;
  f.name = std::move(name);
  f.urls = std::move(urls);
  f.md5 = std::move(md5);
  f.size = size;
  return f;
}

Manifest make_builtin() {
  Manifest m;
  // https://www.cs.toronto.edu/~kriz/cifar.html publishes the MD5 of each archive.
  m["cifar10"] = {file("cifar-10-binary.tar.gz",
                       {"https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"},
                       "c32a1d4ab5d03f1284b67883e8d87530", 170052171)};
  m["cifar100"] = {file("cifar-100-binary.tar.gz",
                        {"https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"},
                        "03b5dce01913d631647c71ecec9e9cb8", 168513733)};
  // MNIST: PyTorch's S3 mirror first (yann.lecun.com often refuses downloads), then the original.
  struct Entry {
    const char* name;
    const char* md5;
    int64_t size;
  };
  const Entry mnist[] = {
      {"train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", 9912422},
      {"train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432", 28881},
      {"t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", 1648877},
      {"t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", 4542},
  };
  for (const Entry& e : mnist) {
    m["mnist"].push_back(
        file(e.name,
             {std::string("https://ossci-datasets.s3.amazonaws.com/mnist/") + e.name,
              std::string("http://yann.lecun.com/exdb/mnist/") + e.name},
             e.md5, e.size));
  }
  // Fashion-MNIST as published by Zalando Research (github.com/zalandoresearch/fashion-mnist).
  // Debian's dataset-fashion-mnist ships the same files with the gzip header rewritten (no FNAME
  // field, a 2020 MTIME; the deflate stream is identical), so its .gz files are 23-24 bytes
  // shorter and have other MD5s; tests/data/test_manifest.cpp restores the header and checks these.
  // content_md5: the MD5 of the decompressed IDX bytes (measured on Debian's copies, whose deflate
  // streams are the published ones), so `datasets verify` accepts Debian's repackaged files.
  struct FashionEntry {
    const char* name;
    const char* md5;
    int64_t size;
    const char* content_md5;
  };
  const FashionEntry fashion[] = {
      {"train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26421880,
       "f4a8712d7a061bf5bd6d2ca38dc4d50a"},
      {"train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe", 29515,
       "9018921c3c673c538a1fc5bad174d6f9"},
      {"t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79", 4422102,
       "8181f5470baa50b63fa0f6fddb340f0a"},
      {"t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", 5148,
       "15d484375f8d13e6eb1aabb0c3f46965"},
  };
  for (const FashionEntry& e : fashion) {
    RemoteFile f =
        file(e.name,
             {std::string("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/") + e.name},
             e.md5, e.size);
    f.content_md5 = e.content_md5;
    m["fashion_mnist"].push_back(f);
  }
  return m;
}

bool valid_url(const std::string& url) {
  const std::string lower = ascii_lower(std::string_view(url).substr(0, 8));
  for (const char* scheme : {"http://", "https://", "file://"}) {
    const std::string s(scheme);
    if (lower.compare(0, s.size(), s) == 0) {
      if (url.size() <= s.size()) return false;
      for (char c : url) {
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
      }
      return true;
    }
  }
  return false;
}

// The last path component of `url`, query string and fragment dropped.
std::string name_from_url(const std::string& url) {
  std::string u = url.substr(0, url.find_first_of("?#"));
  const size_t scheme = u.find("://");
  const size_t path_start = u.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (path_start == std::string::npos) return "";  // "http://host": no path
  const size_t slash = u.rfind('/');
  return u.substr(slash + 1);
}

bool plain_file_name(const std::string& n) {
  return !n.empty() && n != "." && n != ".." && n.find('/') == std::string::npos &&
         n.find('\\') == std::string::npos && n.find('\0') == std::string::npos;
}

std::string lower_md5(const std::string& md5) {
  if (md5.size() != 32) return "";
  for (char c : md5)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return "";
  return ascii_lower(md5);
}

RemoteFile parse_file(const json& j, const std::string& where) {
  CYCLONE_CHECK(j.is_object(), where, ": must be an object, got ", j.dump());
  static const std::set<std::string> kKeys = {"url", "urls", "md5", "size", "name", "content_md5"};
  for (const auto& [key, value] : j.items()) {
    CYCLONE_CHECK(kKeys.count(key), where, ": unknown key \"", key,
                  "\" (known: url, urls, md5, size, name)");
  }
  RemoteFile f;
  const bool has_url = j.contains("url"), has_urls = j.contains("urls");
  CYCLONE_CHECK(has_url != has_urls, where, ": needs exactly one of \"url\" and \"urls\"",
                has_url ? ", has both" : ", has neither");
  if (has_url) {
    CYCLONE_CHECK(j["url"].is_string(), where, ": key \"url\" must be a string, got ",
                  j["url"].dump());
    f.urls.push_back(j["url"].get<std::string>());
  } else {
    const json& urls = j["urls"];
    CYCLONE_CHECK(urls.is_array() && !urls.empty(), where,
                  ": key \"urls\" must be a non-empty list of strings, got ", urls.dump());
    for (const json& u : urls) {
      CYCLONE_CHECK(u.is_string(), where, ": key \"urls\" must hold strings, got ", u.dump());
      f.urls.push_back(u.get<std::string>());
    }
  }
  const char* url_key = has_url ? "url" : "urls";
  for (const std::string& u : f.urls) {
    CYCLONE_CHECK(valid_url(u), where, ": key \"", url_key, "\": \"", u,
                  "\" is not an http://, https:// or file:// URL");
  }
  CYCLONE_CHECK(j.contains("md5"), where, ": key \"md5\" is required");
  CYCLONE_CHECK(j["md5"].is_string(), where, ": key \"md5\" must be a string, got ",
                j["md5"].dump());
  f.md5 = lower_md5(j["md5"].get<std::string>());
  CYCLONE_CHECK(!f.md5.empty(), where, ": key \"md5\" must be 32 hex digits, got \"",
                j["md5"].get<std::string>(), "\"");
  if (j.contains("size")) {
    const json& s = j["size"];
    CYCLONE_CHECK(s.is_number_unsigned() || (s.is_number_integer() && s.get<int64_t>() >= 0), where,
                  ": key \"size\" must be a whole number of bytes >= 0, got ", s.dump());
    CYCLONE_CHECK(!s.is_number_unsigned() || s.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX),
                  where, ": key \"size\" is too large: ", s.dump());
    f.size = s.get<int64_t>();
  }
  if (j.contains("content_md5")) {
    CYCLONE_CHECK(j["content_md5"].is_string(), where, ": key \"content_md5\" must be a string");
    f.content_md5 = lower_md5(j["content_md5"].get<std::string>());
    CYCLONE_CHECK(f.content_md5.size() == 32 &&
                      f.content_md5.find_first_not_of("0123456789abcdef") == std::string::npos,
                  where, ": key \"content_md5\" must be 32 hex digits");
  }
  if (j.contains("name")) {
    CYCLONE_CHECK(j["name"].is_string(), where, ": key \"name\" must be a string, got ",
                  j["name"].dump());
    f.name = j["name"].get<std::string>();
    CYCLONE_CHECK(plain_file_name(f.name), where, ": key \"name\": \"", f.name,
                  "\" is not a plain file name");
  } else {
    f.name = name_from_url(f.urls.front());
    CYCLONE_CHECK(plain_file_name(f.name), where, ": key \"", url_key,
                  "\": cannot take a file name from \"", f.urls.front(),
                  "\"; give one with \"name\"");
  }
  return f;
}

}  // namespace

const Manifest& builtin_manifest() {
  static const Manifest m = make_builtin();
  return m;
}

Manifest parse_manifest(std::string_view json_text, const std::string& origin) {
  json root;
  try {
    root = json::parse(json_text.begin(), json_text.end(),
                       json_depth_limit<json>("manifest " + origin));
  } catch (const json::parse_error& e) {
    CYCLONE_THROW("manifest ", origin, ": not valid JSON at byte ", e.byte, ": ", e.what());
  } catch (const json::exception& e) {  // a number beyond double's range (out_of_range.406)
    CYCLONE_THROW("manifest ", origin, ": not valid JSON: ", e.what());
  }
  CYCLONE_CHECK(root.is_object(), "manifest ", origin,
                ": must be a JSON object {dataset: [files]}, got ", root.type_name());
  std::string known;
  for (const DatasetInfo& info : dataset_infos()) {
    if (!info.default_dir.empty()) known += (known.empty() ? "" : ", ") + info.name;
  }
  Manifest m;
  for (const auto& [dataset, files] : root.items()) {
    const DatasetInfo* info = nullptr;
    for (const DatasetInfo& i : dataset_infos()) {
      if (i.name == dataset) info = &i;
    }
    CYCLONE_CHECK(info != nullptr, "manifest ", origin, ": unknown dataset \"", dataset,
                  "\" (known: ", known, ")");
    CYCLONE_CHECK(!info->default_dir.empty(), "manifest ", origin, ": dataset \"", dataset,
                  "\" is generated and has no files to fetch");
    CYCLONE_CHECK(files.is_array() && !files.empty(), "manifest ", origin, ": dataset \"", dataset,
                  "\" must be a non-empty list of files, got ", files.dump());
    std::vector<RemoteFile> list;
    std::set<std::string> names;
    for (size_t i = 0; i < files.size(); ++i) {
      const std::string where =
          "manifest " + origin + ": dataset \"" + dataset + "\", file " + std::to_string(i);
      RemoteFile f = parse_file(files[i], where);
      CYCLONE_CHECK(names.insert(f.name).second, where, ": key \"name\": \"", f.name,
                    "\" is listed twice");
      list.push_back(std::move(f));
    }
    m[dataset] = std::move(list);
  }
  return m;
}

Manifest active_manifest(const std::string& path) {
  std::string origin = path;
  if (origin.empty()) {
    const char* env = std::getenv("CYCLONE_DATASET_MANIFEST");
    if (env == nullptr || env[0] == '\0') return builtin_manifest();
    origin = env;
  }
  // 16 MiB is far beyond any real manifest; a larger file is a wrong path.
  const Manifest file = parse_manifest(cyclone::read_file(origin, uint64_t{1} << 24), origin);
  Manifest m = builtin_manifest();
  for (const auto& [dataset, files] : file) m[dataset] = files;
  return m;
}

std::string manifest_json(const Manifest& m) {
  json root = json::object();
  for (const auto& [dataset, files] : m) {
    json list = json::array();
    for (const RemoteFile& f : files) {
      json e = json::object();
      e["name"] = f.name;
      e["urls"] = f.urls;
      e["md5"] = f.md5;
      if (f.size >= 0) e["size"] = f.size;
      if (!f.content_md5.empty()) e["content_md5"] = f.content_md5;
      list.push_back(std::move(e));
    }
    root[dataset] = std::move(list);
  }
  return root.dump(2) + "\n";
}

}  // namespace cyclone::data
