// DataLoader: float batches of a Dataset, made ahead of time by worker threads and, for a GPU,
// copied to it on a stream of its own while the previous step computes.
//
// What a batch holds is a pure function of (seed, epoch, batch index): the epoch's order is a
// Philox permutation (data/random.h, Purpose::kShuffle, or the identity without shuffling); sample
// k of batch b is image order[b * batch_size + k] transformed by data/augment.h with the random
// choices of (seed, epoch, b * batch_size + k). With shards (LoaderOptions::shard, data
// parallelism) a batch is this shard's contiguous part of global batch b and positions count in
// the global order. Workers only decide who computes which batch, so
// the batches are identical for any number of workers (0, 1, 4 ... are tested to agree).
//
// Pipeline (workers > 0): tickets t = 0, 1, 2 ... stand for (epoch, batch) in order, running on
// into the next epoch so the GPU never waits at an epoch boundary. `prefetch` slots make a ring;
// a worker takes the next ticket once its slot's previous batch was handed out, and fills the
// slot's host buffers (page-locked when the device is a GPU). next() hands the batch out:
//  - CPU device: the slot's buffers themselves. A batch stays valid while anyone holds it: a
//    worker about to refill a slot whose tensors are still referenced gives the slot new ones.
//  - GPU device: device tensors allocated on the caller's current stream, filled by an
//    asynchronous copy on the loader's copy stream (which first waits for the allocation); the
//    caller's stream then waits for the copy on the device, never on the host. After handing out
//    batch t, next() starts the copy of batch t + 1 when it is ready, so that copy overlaps the
//    step computing on batch t. A slot's pinned buffers are refilled only after their copy ended.
// A dataset of float32 images (precomputed features: train/precompute.h) is batched as it is:
// rows gathered in the epoch's order, no normalisation, no augmentation. When such a dataset lives
// in GPU memory the batches are gathered there (kernels::gather_rows on the caller's stream), with
// no worker and no host copy.
// Augmentation runs on the CPU workers: bench_data measures it at well over the rates the H100
// trains at (benchmarks/bench_data.cpp), so a GPU kernel would buy nothing but complexity.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "cyclone/core/device.h"
#include "cyclone/core/tensor.h"
#include "cyclone/data/augment.h"
#include "cyclone/data/dataset.h"

namespace cyclone::data {

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;
  bool drop_last = false;  // drop a last batch smaller than batch_size
  Augment augment = {};    // none by default; Augment::cifar() for the standard CIFAR one
  bool normalize = true;   // (x/255 - mean) / std per channel; false: x / 255
  std::vector<float> mean = {}, std = {};  // empty: the dataset's
  int workers = -1;  // threads making batches; -1: default_workers(); 0: made by next() itself
  // Batches made ahead of the one handed out; 0: 2 * workers, at most kPrefetchBytes of batches
  // (a full-dataset batch times 2 * 64 workers would be gigabytes), never fewer than 2.
  int prefetch = 0;
  Device device = default_device();
  uint64_t seed = 0;
  // Data parallelism: this loader yields shard `shard` of `num_shards` of every global batch of
  // batch_size x num_shards samples (the same epoch order on every shard, cut in contiguous
  // parts), so S ranks with batch B see together exactly what one loader with batch S x B sees:
  // a global batch of m images gives shard k the m / S of them after the first
  // k * (m / S) + min(k, m % S), and one more when k < m % S.
  // Every shard has the same number of batches; in a last global batch of fewer than S images
  // some shards' batches are empty (size() 0), which train_step and evaluate accept.
  int shard = 0;
  int num_shards = 1;
};

// What the batches made ahead may take in memory by default (LoaderOptions::prefetch).
inline constexpr int64_t kPrefetchBytes = int64_t{256} << 20;

// min(4, hardware threads): four cores feed WRN-28-10 on an H100 many times over (bench_data).
int default_workers();

struct Batch {
  Tensor images = {};  // float32 [B, C, H, W] on the loader's device
  Tensor labels = {};  // int32 [B] on the loader's device
  int64_t epoch = 0;
  int64_t index = 0;  // batch index within the epoch
  int64_t size() const { return labels.defined() ? labels.numel() : 0; }
};

// Batches per epoch of n samples.
int64_t batch_count(int64_t n, int64_t batch_size, bool drop_last);
// The order of an epoch's samples (the identity without shuffling).
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle);

class DataLoader {
 public:
  // Takes a (shared, cheap) copy of the dataset's tensors; starts the workers, which begin on
  // epoch 0 at once.
  DataLoader(const Dataset& dataset, const LoaderOptions& options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t num_batches() const;
  int64_t num_samples() const;
  const LoaderOptions& options() const;
  // Batches made ahead (the ring's slots): LoaderOptions::prefetch, or its default.
  int prefetch() const;

  // Makes `epoch` the one next() walks through, from its first batch. Free when the pipeline is
  // already there (after the last batch of epoch - 1, or at construction for epoch 0); otherwise
  // (resuming, repeating an epoch) the batches made ahead are dropped.
  void start_epoch(int64_t epoch);
  // The next batch of the current epoch; false (and `batch` untouched) after its last one. Errors
  // raised while making a batch are rethrown here, to the caller's thread.
  bool next(Batch& batch);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cyclone::data
