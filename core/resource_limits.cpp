#include "cyclone/core/resource_limits.h"

#include <cerrno>
#include <exception>
#include <fstream>
#include <string>

#include <sys/resource.h>

namespace cyclone {

std::string mib_text(uint64_t bytes) {
  return std::to_string((bytes + (uint64_t{1} << 19)) >> 20) + " MiB";
}

std::string size_text(uint64_t bytes) {
  if (bytes < 1024 || (bytes < (uint64_t{1} << 20) && bytes % 1024 != 0))
    return std::to_string(bytes) + " bytes";
  if (bytes < (uint64_t{1} << 20)) return std::to_string(bytes / 1024) + " KiB";
  return mib_text(bytes);
}

std::optional<uint64_t> address_space_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_AS, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return std::nullopt;
  return static_cast<uint64_t>(r.rlim_cur);
}

std::optional<uint64_t> stack_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_STACK, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return std::nullopt;
  return static_cast<uint64_t>(r.rlim_cur);
}

uint64_t address_space_in_use() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmSize:", 0) != 0) continue;
    try {
      return std::stoull(line.substr(7)) * 1024;  // "VmSize:	  105712 kB"
    } catch (const std::exception&) {
      return 0;
    }
  }
  return 0;
}

std::string address_space_note() {
  const std::optional<uint64_t> limit = address_space_limit();
  if (!limit) return "";
  return "the process's address-space limit (ulimit -v) is " + mib_text(*limit) + ", " +
         mib_text(address_space_in_use()) + " of it in use";
}

}  // namespace cyclone

namespace cyclone {

std::string thread_start_failure(const std::string& what, const std::exception& e,
                                 const std::string& fewer) {
  std::string limits;
  rlimit r{};
  if (getrlimit(RLIMIT_NPROC, &r) == 0 && r.rlim_cur != RLIM_INFINITY)
    limits = "the limit on processes and threads (ulimit -u) is " + std::to_string(r.rlim_cur);
  if (const std::string as = address_space_note(); !as.empty())
    limits += (limits.empty() ? "" : "; ") + as;
  if (limits.empty()) limits = "the system is out of threads or memory";
  return "cannot start " + what + " (" + e.what() + "): " + limits + "; raise the limit or " +
         fewer;
}

}  // namespace cyclone

namespace cyclone {

std::string limit_note(int err) {
  rlimit r{};
  if (err == EFBIG && getrlimit(RLIMIT_FSIZE, &r) == 0 && r.rlim_cur != RLIM_INFINITY)
    return " (the process's file-size limit, ulimit -f, is " + size_text(r.rlim_cur) +
           ": raise it, e.g. ulimit -f unlimited)";
  if (err == EMFILE && getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur != RLIM_INFINITY)
    return " (the process's limit on open files, ulimit -n, is " + std::to_string(r.rlim_cur) +
           ": raise it, e.g. ulimit -n 1024)";
  return "";
}

}  // namespace cyclone
