// Resource limits a batch scheduler or shell sets on the process, named in the errors they cause.
//
// The address-space limit (RLIMIT_AS, set by `ulimit -v`, common under batch
// schedulers). It caps virtual memory, not RAM: reserved but untouched pages count against it
// (each OpenBLAS thread's 128 MiB buffer, each thread's stack and malloc arena), so a process
// can be refused memory on a machine with gigabytes free. Errors caused by it must say so, or
// the user looks for the memory in the wrong place.
#pragma once

#include <cstdint>
#include <exception>
#include <optional>
#include <string>

namespace cyclone {

// "293 MiB": bytes in mebibytes, rounded to the nearest, for messages.
std::string mib_text(uint64_t bytes);

// A limit's size for messages: "512 bytes", "100 KiB" (whole KiB under 1 MiB), else mib_text.
std::string size_text(uint64_t bytes);

// The soft RLIMIT_AS in bytes; nullopt when unlimited.
std::optional<uint64_t> address_space_limit();

// The soft RLIMIT_STACK in bytes (ulimit -s); nullopt when unlimited.
std::optional<uint64_t> stack_limit();

// The process's mapped virtual memory in bytes (VmSize in /proc/self/status; 0 if unreadable).
uint64_t address_space_in_use();

// "the process's address-space limit (ulimit -v) is 293 MiB, 250 MiB of it in use" when a limit
// is set, else "".
std::string address_space_note();

// Why a thread could not start, and what to do: `what` ("CPU worker thread 3 of 16") and the
// error std::thread gave, the limits that cause it (ulimit -u, ulimit -v) and `fewer`, the setting
// that asks for fewer threads. One line, for an Error.
std::string thread_start_failure(const std::string& what, const std::exception& e,
                                 const std::string& fewer);

// What to add to strerror(err) when a limit of this process caused err, else "": the file-size
// limit (ulimit -f) for EFBIG, the open-files limit (ulimit -n) for EMFILE, with the limit's
// value and what to do. A write past ulimit -f fails with EFBIG only where SIGXFSZ is ignored
// (train::prepare_for_limits); otherwise the signal kills the process.
std::string limit_note(int err);

}  // namespace cyclone
