// Datasets that fetch themselves: what is missing from a dataset's directory is downloaded from
// the manifest's sources (data/manifest.h), verified (size, MD5) and, for archives, extracted
// (data/archive.h) — once: a lock on the directory makes other processes (another run, the
// other ranks of an MPI job) wait and then find the files present. Nothing half-written is ever
// left where a reader would take it for data: downloads go to <name>.part (resumed with an HTTP
// Range request), archives are extracted into a temporary directory and renamed into place. An
// archive already in the directory (placed by hand) is checked against the manifest's size and MD5
// before anything is extracted from it.
//
// After a fetch, <dir>/.cyclone-verified.json records the MD5 of every file it wrote, so that
// verify_dataset can re-check extracted members whose checksums the publisher does not give.
#pragma once

#include <string>
#include <vector>

#include "cyclone/data/download.h"

namespace cyclone::data {

struct FetchOptions {
  std::string manifest = {};  // a manifest file; "": $CYCLONE_DATASET_MANIFEST or the built-in one
  DownloadOptions download = {};                  // timeouts, progress
  std::string other_dir = "pass --data_dir=DIR";  // how to choose another directory (registry.h)
};

// True when every file both splits of `name` read is in `dir` (synthetic: always).
bool dataset_present(const std::string& name, const std::string& dir);

// Makes `dir` (created if missing) hold dataset `name`: a no-op when present, else fetches what is
// missing under the directory's lock. Errors are one line naming the URL, the reason and what to do
// (the URL to fetch by hand and the directory to put the files in).
void fetch_dataset(const std::string& name, const std::string& dir,
                   const FetchOptions& options = {});

struct VerifiedFile {
  std::string name = {};
  std::string status = {};  // "ok", "missing", "mismatch", "unverified" (no checksum known),
                            // "unreadable" (a directory, a FIFO, a damaged .gz: detail says)
  std::string detail = {};  // e.g. "md5 3f.. expected c3.."
};
// Re-checks every file a run of `name` would read from `dir` (the spelling the reader picks, e.g.
// MNIST's uncompressed file before its .gz): files the manifest lists against its MD5 and size,
// an uncompressed copy against the published data (the manifest's content_md5, or the published
// .gz beside it), extracted archive members against .cyclone-verified.json. Never blocks on or
// stops at one bad file.
std::vector<VerifiedFile> verify_dataset(const std::string& name, const std::string& dir,
                                         const std::string& manifest = "");

}  // namespace cyclone::data
