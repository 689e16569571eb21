#include "cyclone/train/precompute.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "cyclone/core/autograd.h"
#include "cyclone/core/cuda/runtime.h"
#include "cyclone/core/error.h"
#include "cyclone/dist/communicator.h"

namespace cyclone::train {

namespace {

// The output shape of the body ([C, H, W], flat outputs padded with 1s) from this rank's first
// batch, agreed over the ranks: a rank whose first batch is empty (fewer images than ranks) has
// not run the body and takes the others' shape.
std::vector<int64_t> agreed_shape(const Tensor& out, dist::Communicator& ranks) {
  std::vector<int64_t> dims;
  if (out.defined()) {
    CYCLONE_CHECK(out.rank() >= 1 && out.rank() <= 4, "precompute: the body's output ", out.shape(),
                  " has more than 4 dimensions");
    dims.assign(out.shape().dims().begin() + 1, out.shape().dims().end());
  }
  dims.resize(3, 1);
  if (ranks.size() == 1) return dims;
  Tensor t = Tensor::zeros(Shape{3}, DType::kInt32, Device::cpu());
  for (int k = 0; k < 3 && out.defined(); ++k) {
    CYCLONE_CHECK(dims[k] <= INT32_MAX, "precompute: the body's output ", out.shape(),
                  " is too large");
    t.data<int32_t>()[k] = static_cast<int32_t>(dims[k]);
  }
  ranks.all_reduce(t, dist::ReduceOp::kMax);
  std::vector<int64_t> agreed(t.data<int32_t>(), t.data<int32_t>() + 3);
  CYCLONE_CHECK(!out.defined() || agreed == dims, "precompute: the body's output ", out.shape(),
                " on rank ", ranks.rank(), " differs from another rank's");
  return agreed;
}

}  // namespace

data::Dataset precompute_features(Module& body, const data::Dataset& d,
                                  const data::LoaderOptions& options, dist::Communicator* ranks) {
  CYCLONE_CHECK(d.size() > 0, "precompute: ", d.name, " has no images");
  dist::SoloCommunicator alone;  // a world of one: the gathers below are copies
  dist::Communicator& comm = ranks ? *ranks : alone;
  const int shards = comm.size();
  data::LoaderOptions o = options;
  // Every image, in order, as it is: the training loader's shuffle, augmentation and drop_last
  // (which data-parallel runs set when the last global batch would leave a rank empty) apply to the
  // features later, not to computing them.
  o.shuffle = false;
  o.augment = data::Augment{};
  o.drop_last = false;
  // This rank's shard of every batch (the whole batch in a world of one); the head's own loader
  // shards the features again when it trains.
  o.shard = comm.rank();
  o.num_shards = shards;
  data::DataLoader loader(d, o);
  body.eval();
  autograd::NoGradGuard no_grad;
  Tensor features;
  int64_t per = 0, row = 0;  // row: the images gathered so far
  const int64_t n = d.size(), global = o.batch_size * shards;
  data::Batch b;
  loader.start_epoch(0);
  for (int64_t index = 0; loader.next(b); ++index) {
    Tensor out;
    if (b.size() > 0) out = body(b.images).to(Device::cpu());
    if (!features.defined()) {
      std::vector<int64_t> dims = agreed_shape(out, comm);
      per = dims[0] * dims[1] * dims[2];
      dims.insert(dims.begin(), n);
      features = Tensor::empty(Shape(dims), DType::kFloat32, Device::cpu());
    }
    CYCLONE_CHECK(
        !out.defined() || (out.dtype() == DType::kFloat32 && out.numel() == b.size() * per),
        "precompute: the body's output changed shape between batches (", out.shape(), ")");
    // Global batch `index`: m images, rank k's part of them at first + k * q + min(k, r), of
    // q + (k < r) rows (data/loader.h).
    const int64_t first = index * global, m = std::min(global, n - first);
    const int64_t q = m / shards, r = m % shards;
    row += m;
    if (r == 0) {
      // Equal parts, in rank order (a world of one's whole batch): gathered straight into place.
      comm.all_gather(out, features.slice(first, first + m));
    } else {
      const int64_t rows = q + 1;  // every rank sends rows rows, its own first
      const Tensor send = Tensor::zeros(Shape{rows, per}, DType::kFloat32, Device::cpu());
      const Tensor recv = Tensor::empty(Shape{rows * shards, per}, DType::kFloat32, Device::cpu());
      if (b.size() > 0)
        std::memcpy(send.data<float>(), out.data<float>(),
                    static_cast<size_t>(b.size() * per) * sizeof(float));
      comm.all_gather(send, recv);
      float* dst = features.data<float>() + first * per;
      for (int64_t k = 0; k < shards; ++k)
        std::memcpy(dst + (k * q + std::min(k, r)) * per, recv.data<float>() + k * rows * per,
                    static_cast<size_t>((q + (k < r ? 1 : 0)) * per) * sizeof(float));
    }
  }
  CYCLONE_CHECK(features.defined() && row == n, "precompute: ", row, " of ", n, " images of ",
                d.name, " went through");
  data::Dataset f;
  f.name = d.name + "/features";
  f.images = features;
  f.labels = d.labels;
  f.num_classes = d.num_classes;
  f.mean.assign(static_cast<size_t>(features.dim(1)), 0.f);  // unused: features are not scaled
  f.std.assign(static_cast<size_t>(features.dim(1)), 1.f);
  return f;
}

std::string keep_features_on_device(data::Dataset& f, Device device) {
  if (!device.is_cuda()) return "host memory";
  const size_t bytes = f.images.nbytes() + f.labels.nbytes();
  if (bytes > gpu::device_total_memory(device.index) / 4) return "host memory";
  try {
    Tensor images = f.images.to(device), labels = f.labels.to(device);
    f.images = std::move(images);
    f.labels = std::move(labels);
    return "GPU memory";
  } catch (const Error&) {
    return "host memory";  // the pool is capped or full: the loader streams them instead
  }
}

}  // namespace cyclone::train
