// The convolution algorithms cuDNN was timed to choose (kernels/cuda/conv.cpp), kept for the
// process and, when a file is named, across runs: a second run of the same model skips cuDNN's
// search (seconds for WRN-28-10's shapes) and, because the choice is the same, repeats the first
// run's numerics bit for bit.
//
// The file is JSON: {"version": 2, "fingerprint": "...", "entries": [{"key": [19 integers],
// "algo": a, "math": m, "workspace": bytes}, ...]}. The fingerprint says what a choice is valid
// for (the cuDNN and CUDA versions and the GPUs' names); a file written under another one is left
// unused and replaced on the next insert. A missing file starts an empty table silently; an
// unreadable, corrupt or truncated one, or one with a malformed entry, is ignored as a whole with
// one warning line naming the file and the reason. Writes are atomic (write_file_atomic): a crash
// or a full disk never leaves half a file; a failed write warns once and the table carries on in
// memory. Thread-safe.
//
// The GPU code uses one process-wide table: its file is $CYCLONE_CUDNN_CACHE (unset: memory only).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace cyclone::kernels {

// pass, device, dtype, math type, N, Cin, H, W, Cout, kh, kw, Hout, stride, padding, dilation,
// channels last.
using AlgoKey = std::array<int64_t, 19>;

struct AlgoChoice {
  int algo = 0;
  int math = 0;
  uint64_t workspace = 0;
  bool operator==(const AlgoChoice&) const = default;
};

class AlgoCache {
 public:
  // path empty: memory only. Loads the file now (see above for what is ignored and how).
  AlgoCache(std::string path, std::string fingerprint);

  std::optional<AlgoChoice> find(const AlgoKey& key) const;
  // Adds (or replaces) a choice and, with a file, rewrites it.
  void insert(const AlgoKey& key, const AlgoChoice& choice);
  size_t size() const;
  const std::string& path() const { return path_; }
  // Why the file's contents were not used, or why it could not be written; "" when all is well.
  std::string note() const;

 private:
  void load();
  void warn(const std::string& what);  // records the note and prints it once (mutex held)

  const std::string path_, fingerprint_;
  mutable std::mutex mutex_;
  std::map<AlgoKey, AlgoChoice> table_;
  std::string note_;
  bool warned_ = false;
};

}  // namespace cyclone::kernels
