// Files written so that a reader never sees half of one, and read with a clear error for every way
// a path can be wrong.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cyclone {

// Writes `bytes` to a temporary file beside `path`, flushes it (fsync), renames it over `path`,
// and fsyncs the directory: after a crash at any moment `path` holds either the old or the new
// contents. On any failure (no such directory, permission, disk full) the temporary file is
// removed and an Error names `path` and the system's reason. A symlink is written through: the
// file it leads to is replaced (in that file's directory) and the link kept. A path that is or
// leads to anything but a regular file (a directory, a device such as /dev/null, a pipe) is
// refused with an Error naming it, never replaced.
void write_file_atomic(const std::string& path, std::string_view bytes);

// The whole file. Errors name the path: missing, a directory, unreadable, or larger than
// max_bytes (checked before reading, so a huge file is never loaded by mistake).
std::string read_file(const std::string& path, uint64_t max_bytes = uint64_t{1} << 34);

// strerror(err), with what to do added for a full disk (ENOSPC), an exceeded quota (EDQUOT) or a
// limit of the process (ulimit -f, ulimit -n: limit_note): the reason every "cannot write" error
// gives.
std::string errno_reason(int err);

// Creates `dir` and its missing parents. When it cannot, an Error names `dir` and why: a file (or
// anything but a directory) in the way, naming it; a parent that is not writable; the system's
// reason otherwise.
void make_directories(const std::string& dir);

// The checks of make_directories and write_file_atomic without creating or writing anything, for
// a program to refuse an output path before it spends time on work it could not save: `dir`
// exists as a writable directory or its nearest existing ancestor is one; `path` is nothing yet
// or a regular file (through symlinks), in a directory make_directories can create. The Error
// names the path as the write would.
void check_can_make_directories(const std::string& dir);
void check_can_write_file(const std::string& path);

// `path` as a shell word, for a command a message tells the user to run: as it is when it holds
// only characters no shell treats specially, else in single quotes (a ' inside as '\'').
std::string shell_quote(std::string_view path);

// Size of a regular file in bytes, or an Error naming the path (missing, directory, unreadable).
uint64_t file_size(const std::string& path);

}  // namespace cyclone
