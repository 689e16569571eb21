// kernels/gemm.h's check_blas_address_space: OpenBLAS under ulimit -v.
#include <cblas.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cyclone/core/resource_limits.h"
#include "cyclone/kernels/cpu/gemm.h"
#include "cyclone/kernels/gemm.h"

namespace cyclone::kernels {

namespace {
// OpenBLAS's per-thread buffer, BUFFER_SIZE (32 << 22) in its common_x86_64.h: the size of the
// mmap (then malloc) its blas_memory_alloc retries without end when refused.
constexpr uint64_t kBlasBufferBytes = uint64_t{128} << 20;

// Anonymous mappings of a buffer's size or more: at start these are OpenBLAS's buffers only
// (malloc arenas reserve 64 MiB, thread stacks 8 MiB).
int64_t blas_buffers_mapped() {
  std::ifstream in("/proc/self/maps");
  int64_t n = 0;
  for (std::string line; std::getline(in, line);) {
    // "start-end perms offset dev inode [path]": no path means anonymous.
    std::istringstream fields(line);
    std::string range, perms, offset, dev, inode, path;
    fields >> range >> perms >> offset >> dev >> inode >> path;
    const size_t dash = range.find('-');
    if (!path.empty() || dash == std::string::npos) continue;
    const uint64_t lo = std::stoull(range.substr(0, dash), nullptr, 16);
    const uint64_t hi = std::stoull(range.substr(dash + 1), nullptr, 16);
    if (hi - lo >= kBlasBufferBytes) ++n;
  }
  return n;
}
}  // namespace

std::string check_blas_address_space(bool multiplies) {
  const std::optional<uint64_t> limit = address_space_limit();
  if (!limit) return "";
  const int threads = cpu::blas_threads_at_load();
  // The workers ask for their buffers as they start (before main, or just after when they were
  // scheduled late); a buffer not mapped yet is still to come, or being retried for ever.
  const int64_t have = blas_buffers_mapped();
  const int64_t missing = std::max<int64_t>(threads - 1 - have, 0) + (multiplies ? 1 : 0);
  if (missing == 0) return "";
  const uint64_t in_use = address_space_in_use();
  const uint64_t free = *limit > in_use ? *limit - in_use : 0;
  if (free < kBlasBufferBytes * static_cast<uint64_t>(missing)) {
    const uint64_t want = in_use + kBlasBufferBytes * static_cast<uint64_t>(missing) + (64 << 20);
    return "the address-space limit (ulimit -v) is " + mib_text(*limit) + " and " +
           mib_text(in_use) + " of it is in use at start, but OpenBLAS needs " +
           mib_text(kBlasBufferBytes) + " more for each of its " + std::to_string(threads) +
           " thread" + (threads == 1 ? "" : "s") + ": raise it to at least " + mib_text(want) +
           " (ulimit -v " + std::to_string(want >> 10) + ")" +
           (threads > 1 ? " or run with OPENBLAS_NUM_THREADS=1 (or a few)" : "");
  }
  if (multiplies) {
    // Large enough that OpenBLAS takes its buffer (up to 64^3 it works on the stack).
    constexpr int kN = 128;
    std::vector<float> m(kN * kN, 0.0f), out(kN * kN);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, kN, kN, kN, 1.0f, m.data(), kN, m.data(),
                kN, 0.0f, out.data(), kN);
  }
  return "";
}

}  // namespace cyclone::kernels
