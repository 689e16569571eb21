// The dataset manifest: for each downloadable dataset, the files it is published as (mirrors in
// order, MD5, size). The built-in one lists the official sources; a JSON file (--manifest or
// $CYCLONE_DATASET_MANIFEST) replaces the entries of the datasets it names, e.g. to fetch from a
// local mirror or from file:// URLs on a machine without internet.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cyclone/data/remote_file.h"

namespace cyclone::data {

using Manifest = std::map<std::string, std::vector<RemoteFile>>;  // dataset name -> its files

// The built-in manifest: the official files with their published MD5 and sizes, mirrors in order
// (the same list as torchvision's datasets). "synthetic" has no entry: it is generated.
const Manifest& builtin_manifest();

// JSON {"cifar10": [{"url": "http://.../cifar-10-binary.tar.gz", "md5": "...", "size": 123}], ...};
// each entry has "url" (a string) or "urls" (a list, mirrors in order), "md5" (32 hex digits,
// lowercased on read) and optional "size" (bytes, >= 0) and "name" (default: the first URL's last
// path component, query string dropped; it must be a plain file name). Unknown keys, a dataset the
// registry does not know (or one with no files, like synthetic), bad md5, non-http(s)/file URLs,
// an empty file list and two files of the same name are Errors naming `origin`, the dataset and
// the key.
Manifest parse_manifest(std::string_view json_text, const std::string& origin);

// --manifest path if non-empty, else $CYCLONE_DATASET_MANIFEST if set (and non-empty), else
// builtin_manifest(); a file's datasets replace the built-in entries of the same name, the others
// stay built-in.
Manifest active_manifest(const std::string& path = "");

// Pretty JSON of a manifest (the format parse_manifest reads; "urls" always a list, "size"
// omitted when not published).
std::string manifest_json(const Manifest& m);

}  // namespace cyclone::data
