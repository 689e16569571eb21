#include "cyclone/train/precompute.h"

#include <cstring>

#include "cyclone/core/autograd.h"
#include "cyclone/core/cuda/runtime.h"
#include "cyclone/core/error.h"

namespace cyclone::train {

data::Dataset precompute_features(Module& body, const data::Dataset& d,
                                  const data::LoaderOptions& options) {
  data::LoaderOptions o = options;
  o.shuffle = false;
  o.augment = data::Augment{};
  // Every image, also on a rank of a data-parallel job: the head's own loader takes its shard.
  o.shard = 0;
  o.num_shards = 1;
  data::DataLoader loader(d, o);
  body.eval();
  autograd::NoGradGuard no_grad;
  Tensor features;
  int64_t per = 0, row = 0;
  data::Batch b;
  loader.start_epoch(0);
  while (loader.next(b)) {
    const Tensor out = body(b.images).to(Device::cpu());
    if (!features.defined()) {
      std::vector<int64_t> dims = out.shape().dims();
      dims[0] = d.size();
      while (dims.size() < 4) dims.push_back(1);
      CYCLONE_CHECK(dims.size() == 4, "precompute: the body's output ", out.shape(),
                    " has more than 4 dimensions");
      per = out.numel() / out.dim(0);
      features = Tensor::empty(Shape(dims), DType::kFloat32, Device::cpu());
    }
    CYCLONE_CHECK(out.dtype() == DType::kFloat32 && out.numel() == b.size() * per,
                  "precompute: the body's output changed shape between batches (", out.shape(),
                  ")");
    std::memcpy(features.data<float>() + row * per, out.data<float>(),
                static_cast<size_t>(b.size() * per) * sizeof(float));
    row += b.size();
  }
  CYCLONE_CHECK(row == d.size(), "precompute: ", row, " of ", d.size(), " images went through");
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
