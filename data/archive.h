// Safe extraction of the few files a dataset needs from a downloaded tar archive (CIFAR's
// cifar-10-binary.tar.gz). A downloaded archive is untrusted input: a member may try to escape the
// destination ("../x", "/etc/x"), plant a link that a later write follows, or claim a giant size.
// So the whole archive is vetted before a byte is written, members land in a private temporary
// directory first, and only whole files are renamed into place.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cyclone::data {

// Extracts from the tar archive `archive` (plain, gzip or any filter libarchive reads) the regular
// files whose base name is in `wanted` into `dest_dir` (flattened:
// "cifar-10-batches-bin/test_batch.bin" lands as dest_dir/test_batch.bin). Members are first
// written into a temporary directory inside dest_dir (".extract-<pid>-<n>") and renamed into place
// only when every wanted member was written whole; the temporary directory is removed in every
// case. Before writing anything, the whole archive is scanned: a member with an absolute path, a
// ".." component, a symlink or hard link, a device, fifo or socket is refused — Error naming the
// member and the archive — even if not wanted (an archive holding such a member is not trusted). A
// wanted name missing from the archive is an Error listing the missing ones; so is a wanted name
// held by two members (which one is meant is unclear). A member larger than max_member_bytes is
// refused (no giant writes). Each entry of `wanted` must be a plain file name (no '/', not "." or
// ".."). Returns the names written, in the order of `wanted`. Write errors (disk full, read-only
// dir) name the path. Files of the same name already in dest_dir are replaced (atomically, by
// rename).
std::vector<std::string> extract_members(const std::string& archive, const std::string& dest_dir,
                                         const std::vector<std::string>& wanted,
                                         uint64_t max_member_bytes = uint64_t{1} << 32);

}  // namespace cyclone::data
