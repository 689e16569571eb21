#include "cyclone/data/fetch.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "cyclone/core/error.h"
#include "cyclone/core/file_util.h"
#include "cyclone/data/archive.h"
#include "cyclone/data/gzip.h"
#include "cyclone/data/manifest.h"
#include "cyclone/data/registry.h"

namespace cyclone::data {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kRecord = ".cyclone-verified.json";

std::map<std::string, std::string> read_record(const fs::path& dir) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  if (!fs::exists(dir / kRecord, ec)) return out;
  try {
    const json j = json::parse(::cyclone::read_file((dir / kRecord).string(), 1 << 20));
    for (const auto& [k, v] : j.items())
      if (v.is_string()) out[k] = v.get<std::string>();
  } catch (const json::exception&) {
    // A damaged record only loses the checksums of extracted members: verify says "unverified".
  }
  return out;
}

void write_record(const fs::path& dir, const std::map<std::string, std::string>& record) {
  json j = json::object();
  for (const auto& [k, v] : record) j[k] = v;
  write_file_atomic((dir / kRecord).string(), j.dump(2) + "\n");
}

const std::vector<RemoteFile>& sources(const Manifest& m, const std::string& name) {
  auto it = m.find(name);
  CYCLONE_CHECK(it != m.end() && !it->second.empty(), name,
                ": no download source is known (the manifest has no entry); ",
                dataset_info(name).how_to_get);
  return it->second;
}

std::vector<uint8_t> read_gz_or_raw(const std::string& path) { return data::read_file(path); }

bool present_on_disk(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

// An archive found in the directory (placed by hand, as the offline error suggests) must be the
// published one before its members are extracted and recorded as verified.
void check_placed_archive(const std::string& name, const RemoteFile& f, const fs::path& archive) {
  std::string why;
  const int64_t size = static_cast<int64_t>(file_size(archive.string()));
  if (f.size >= 0 && size != f.size) {
    why = std::to_string(size) + " bytes, expected " + std::to_string(f.size);
  } else if (!f.md5.empty()) {
    const std::string got = md5_file(archive.string());
    if (got != f.md5) why = "md5 " + got + ", expected " + f.md5;
  }
  CYCLONE_CHECK(why.empty(), name, ": ", archive.string(), " is not the published ", f.name, " (",
                why, "; damaged or truncated?): remove it, or replace it with ",
                f.urls.empty() ? std::string("the published file") : f.urls.front(),
                ", and fetch again");
}

// fetch_dataset()'s work once `dir` exists and is locked.
void fetch_locked(const std::string& name, const fs::path& dir,
                  const std::vector<RemoteFile>& files, const FetchOptions& options);

}  // namespace

bool dataset_present(const std::string& name, const std::string& dir) {
  if (name == "synthetic") return true;
  try {
    dataset_files(name, "train", dir);
    dataset_files(name, "test", dir);
    return true;
  } catch (const Error&) {
    return false;
  }
}

void fetch_dataset(const std::string& name, const std::string& dir_str,
                   const FetchOptions& options) {
  if (dataset_present(name, dir_str)) return;
  const Manifest manifest = active_manifest(options.manifest);
  const std::vector<RemoteFile>& files = sources(manifest, name);
  const fs::path dir(dir_str);
  std::error_code ec;
  fs::path created;  // the outermost folder this call makes, if any
  for (fs::path p = fs::absolute(dir, ec).lexically_normal(); !p.empty() && !present_on_disk(p);
       p = p.parent_path())
    created = p;
  fs::create_directories(dir, ec);
  CYCLONE_CHECK(!ec, name, ": cannot create the data directory '", dir_str, "': ", ec.message(),
                " (to use another, ", options.other_dir, ")");
  DirLock lock(dir_str, name);
  if (dataset_present(name, dir_str)) return;  // another process fetched it while we waited
  try {
    fetch_locked(name, dir, files, options);
  } catch (...) {
    // A fetch that failed (offline, a typo in --data_dir) leaves none of the folders it made
    // behind while they are empty (remove() keeps one that holds anything: a partial download).
    if (!created.empty())
      for (fs::path p = fs::absolute(dir, ec).lexically_normal(); fs::remove(p, ec) && p != created;
           p = p.parent_path()) {
      }
    throw;
  }
}

namespace {

void fetch_locked(const std::string& name, const fs::path& dir,
                  const std::vector<RemoteFile>& files, const FetchOptions& options) {
  const std::string dir_str = dir.string();
  std::error_code ec;

  std::map<std::string, std::string> record = read_record(dir);
  const std::vector<std::string> wanted = dataset_file_names(name);
  for (const RemoteFile& f : files) {
    if (f.is_archive()) {
      std::vector<std::string> missing;
      for (const std::string& w : wanted)
        if (!present_on_disk(dir / w)) missing.push_back(w);
      if (missing.empty()) continue;
      const fs::path archive = dir / f.name;
      if (present_on_disk(archive))
        check_placed_archive(name, f, archive);  // put there by hand: nothing has checked it
      else
        download_file(f, archive.string(), options.download);
      // Progress, like the download's, on stdout: stderr is for the one line of an error.
      std::printf("%s: extracting %zu files from %s\n", name.c_str(), missing.size(),
                  f.name.c_str());
      std::fflush(stdout);
      for (const std::string& w : extract_members(archive.string(), dir_str, missing))
        record[w] = md5_file((dir / w).string());
      // The members are what a run reads; the archive would only double the disk used.
      fs::remove(archive, ec);
    } else {
      if (present_on_disk(dir / f.name)) continue;
      try {
        download_file(f, (dir / f.name).string(), options.download);
      } catch (const Error& e) {
        // Offline, every file fails alike: name them all, not only the first, for a fetch by hand.
        std::string others;
        for (const RemoteFile& g : files)
          if (&g != &f && !g.is_archive() && !present_on_disk(dir / g.name))
            others += (others.empty() ? "" : ", ") + g.name;
        if (others.empty()) throw;
        throw Error(e.message() + "; " + name + " also needs " + others + " there");
      }
      record[f.name] = f.md5;
    }
  }
  write_record(dir, record);
  if (!dataset_present(name, dir_str)) {
    // The manifest's files did not provide what the reader needs: say which.
    dataset_files(name, "train", dir_str, options.other_dir);
    dataset_files(name, "test", dir_str, options.other_dir);
  }
}

}  // namespace

namespace {

// The MD5 of `p` if it is the published file `f` (or the same data recompressed), else why not.
std::string check_published(const RemoteFile& f, const fs::path& p, std::string& md5) {
  const int64_t size = static_cast<int64_t>(file_size(p.string()));
  if (f.size >= 0 && size != f.size)
    return std::to_string(size) + " bytes, expected " + std::to_string(f.size);
  md5 = md5_file(p.string());
  return md5 == f.md5 ? "" : "md5 " + md5 + ", expected " + f.md5;
}

// Checks the file `used` that the reader reads; `published` is the manifest's entry for it under
// any of its spellings (null when the manifest has none). Throws when a file cannot be read.
void check_file(VerifiedFile& v, const fs::path& dir, const std::string& used,
                const RemoteFile* published, const std::map<std::string, std::string>& record) {
  const fs::path p = dir / used;
  if (published && published->name == used) {
    std::string md5;
    const std::string why = check_published(*published, p, md5);
    if (why.empty()) return;
    v.status = "mismatch";
    v.detail = why;
    if (!published->content_md5.empty()) {
      // Another gzip header around the same data (Debian's packages rewrite it).
      const std::vector<uint8_t> content = read_gz_or_raw(p.string());
      if (md5_bytes(std::string_view(reinterpret_cast<const char*>(content.data()),
                                     content.size())) == published->content_md5) {
        v.status = "ok";
        v.detail = "same data as published, recompressed (another gzip header)";
      }
    }
    return;
  }
  const auto rec = record.find(used);
  if (rec != record.end()) {
    const std::string got = md5_file(p.string());
    if (got != rec->second) {
      v.status = "mismatch";
      v.detail = "md5 " + got + ", recorded " + rec->second + " when it was fetched";
    }
    return;
  }
  if (published) {
    // An uncompressed copy of the published .gz: its bytes must be the data the .gz holds, known
    // from the manifest or from the published .gz itself when it lies beside it, whole.
    std::string want = published->content_md5, md5;
    if (want.empty() && present_on_disk(dir / published->name) &&
        check_published(*published, dir / published->name, md5).empty()) {
      const std::vector<uint8_t> content = read_gz_or_raw((dir / published->name).string());
      want = md5_bytes(
          std::string_view(reinterpret_cast<const char*>(content.data()), content.size()));
    }
    if (!want.empty()) {
      const std::string got = md5_file(p.string());
      v.status = got == want ? "ok" : "mismatch";
      v.detail = got == want ? "the data of the published " + published->name
                             : "md5 " + got + ", expected " + want +
                                   " (the data of the published " + published->name + ")";
      return;
    }
  }
  v.status = "unverified";
  v.detail = "no checksum recorded (not fetched by Cyclone)";
}

}  // namespace

std::vector<VerifiedFile> verify_dataset(const std::string& name, const std::string& dir_str,
                                         const std::string& manifest_path) {
  const fs::path dir(dir_str);
  std::vector<VerifiedFile> out;
  if (name == "synthetic") return out;
  const Manifest manifest = active_manifest(manifest_path);
  const auto it = manifest.find(name);
  const std::vector<RemoteFile> no_files;
  const std::vector<RemoteFile>& files = it == manifest.end() ? no_files : it->second;
  const std::map<std::string, std::string> record = read_record(dir);
  // The files the reader reads, each under the first of its spellings found on disk (registry.h):
  // a copy under another spelling (MNIST gzipped and not) is never read, so not checked.
  for (const std::vector<std::string>& spellings : dataset_file_spellings(name)) {
    const RemoteFile* published = nullptr;
    for (const RemoteFile& f : files)
      if (!f.is_archive() &&
          std::find(spellings.begin(), spellings.end(), f.name) != spellings.end())
        published = &f;
    std::string used;
    for (const std::string& s : spellings)
      if (used.empty() && present_on_disk(dir / s)) used = s;
    VerifiedFile v{used.empty() ? (published ? published->name : spellings.front()) : used, "ok",
                   ""};
    if (used.empty()) {
      v.status = "missing";
    } else {
      // One file that cannot be read (a directory, a FIFO, a truncated .gz) is reported as such;
      // the others are still checked.
      try {
        check_file(v, dir, used, published, record);
      } catch (const Error& e) {
        v.status = "unreadable";
        v.detail = e.message();
      }
    }
    out.push_back(v);
  }
  return out;
}

}  // namespace cyclone::data
