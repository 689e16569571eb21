// The convolution algorithms cuDNN was timed to choose (kernels/cuda/conv.cpp), kept for the
// process and, when a file is named, across runs: a second run of the same model skips cuDNN's
// search (seconds for WRN-28-10's shapes) and, because the choice is the same, repeats the first
// run's numerics bit for bit.
//
// The file is JSON: {"version": 3, "fingerprint": "...", "entries": [{"key": [22 integers],
// "algo": a, "math": m, "workspace": bytes}, ...]}. The fingerprint says what a choice is valid
// for (the cuDNN and CUDA versions and the GPUs' names); a file written under another one, or in
// an older version of the format (whose keys lack fields), is left unused and replaced on the
// next insert. A missing file starts an empty table silently; an unreadable, corrupt or truncated
// one, or one with a malformed entry, is ignored as a whole with one warning line naming the file
// and the reason. Writes are atomic (write_file_atomic): a crash or a full disk never leaves half a
// file; a failed write warns once and the table carries on in memory. Thread-safe.
//
// The GPU code uses one process-wide table: its file is $CYCLONE_CUDNN_CACHE (unset: memory only).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "cyclone/kernels/conv.h"

namespace cyclone::kernels {

// pass, device, dtype, math type, N, Cin, H, W, Cout, kh, kw, Hout, stride, padding, dilation,
// channels last, then the alignment classes (pointer_alignment) of the x, w and y operands
// (dx, w, dy for backward data; x, dw, dy for backward filter).
using AlgoKey = std::array<int64_t, 22>;

// The largest power of two up to 16 that divides the address (16 for null). cuDNN times the
// algorithms on the first call's buffers (cudnnFind*Ex, all from the caching allocator: 256-byte
// aligned), and its vectorised kernels need 16-byte aligned operands: a later call on a view at an
// odd offset into a larger buffer (Tensor::slice) must be searched again, not handed an algorithm
// that cannot run on it. PyTorch keys its cuDNN plans the same way (getAlignment in
// aten/src/ATen/native/cudnn/Conv_v8.cpp).
int64_t pointer_alignment(const void* p);

// The key of one convolution problem; math is the cudnnMathType_t the search starts from.
AlgoKey conv_algo_key(int64_t pass, int64_t device, DType dtype, int64_t math,
                      const Conv2dGeometry& g, const void* x, const void* w, const void* y);

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
