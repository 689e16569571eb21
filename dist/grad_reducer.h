// GradReducer: averages the gradients of a set of parameters over the ranks, in buckets whose
// all-reduces start while the backward pass is still running (PyTorch DDP's Reducer, simplified).
//
//   GradReducer reducer(world().communicator(device), optimizer.params());
//   reducer.prepare();
//   {
//     autograd::GradReadyHook hook([&](const Tensor& leaf) { reducer.mark_ready(leaf); });
//     loss.backward();
//   }
//   reducer.finish();  // every parameter's .grad is now the mean over the ranks
//
// Buckets. Parameters are taken in reverse registration order (backward produces the last
// layer's gradients first) and packed into flat buckets of about `bucket_bytes` (25 MiB, DDP's
// default; one dtype per bucket). When the last gradient of a bucket is ready it is copied into
// the bucket and the bucket's all-reduce (average) is started — but always in bucket order, so
// every rank issues the same collectives in the same order, which MPI and NCCL require. finish()
// starts the buckets whose gradients never became ready (parameters unused by this pass: their
// gradient counts as zero), waits for all, and copies the means back (a trainable parameter without
// a .grad gets one). Frozen parameters (requires_grad false) are carried as zeros and left alone.
//
// Cost: one copy in and one copy out of every gradient (2 x 4 bytes x parameters of memory
// traffic), and the ring all-reduce itself, 2 (N-1)/N x 4 bytes x parameters per rank.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "cyclone/core/safetensors.h"
#include "cyclone/core/tensor.h"
#include "cyclone/dist/communicator.h"

namespace cyclone::dist {

class GradReducer {
 public:
  static constexpr int64_t kDefaultBucketBytes = int64_t{25} << 20;

  GradReducer(Communicator& comm, std::vector<Tensor> params,
              int64_t bucket_bytes = kDefaultBucketBytes);
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  void prepare();
  void mark_ready(const Tensor& leaf);  // leaves that are not among the parameters are ignored
  void finish();

  // Whether this reducer serves exactly these parameters (same tensors, same order).
  bool serves(const std::vector<Tensor>& params) const;
  bool serves(const NamedTensors& params) const;  // an optimizer's list, names ignored
  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }
  // Buckets whose all-reduce started before finish() (overlapped with the backward pass) in the
  // last pass.
  int64_t launched_early() const { return launched_early_; }
  Communicator& communicator() { return comm_; }

 private:
  struct Bucket {
    std::vector<int> params;
    std::vector<int64_t> offsets;
    int64_t numel = 0;
    Tensor flat;
    int pending = 0;  // trainable parameters whose gradient is not ready yet
    std::unique_ptr<Work> work;
  };
  void launch(Bucket& b);
  void launch_ready_in_order();

  Communicator& comm_;
  std::vector<Tensor> params_;
  std::unordered_map<const void*, int> index_;  // TensorImpl* -> parameter
  std::vector<int> bucket_of_;
  std::vector<char> ready_;
  std::vector<Bucket> buckets_;
  size_t next_ = 0;
  int64_t launched_early_ = 0;
  bool in_pass_ = false;
};

}  // namespace cyclone::dist
