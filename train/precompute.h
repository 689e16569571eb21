// fast.ai's "precompute": with the first layers of a model frozen, their outputs on the training
// images never change, so they are computed once and the rest of the model (the head) trains on
// them. It is exact for an unaugmented, frozen body (frozen layers run in eval mode — fixed
// batch-norm statistics, no dropout — whether precomputed or not), and it is why fast.ai trains a
// new head without augmentation first.
#pragma once

#include <cstdint>
#include <string>

#include "cyclone/data/dataset.h"
#include "cyclone/data/loader.h"
#include "cyclone/layers/module.h"

namespace cyclone::dist {
class Communicator;
}

namespace cyclone::train {

// Runs `body` (in eval mode, without gradients) over every image of `d` in order, batched and
// normalised as `options` says (its augmentation, shuffling and shard are ignored), and returns the
// outputs as a float32 dataset on the CPU: [N, C, H, W], or [N, F, 1, 1] for flat outputs, with
// d's labels and classes. The loader batches such a dataset as it is (data/loader.h).
//
// With `ranks` (a host communicator of several ranks, every one calling this with the same body,
// dataset and batch size) the work is split: each rank runs the body over its shard of every
// batch of batch_size x ranks images (data/loader.h's cut) and the outputs are all-gathered, so
// every rank returns all of them in 1 / ranks of the time. A body's output for an image does not
// depend on its batch (eval mode); the values agree with a world of one's to the last bit or
// within a GEMM's rounding when the batch shape changes its blocking.
data::Dataset precompute_features(Module& body, const data::Dataset& d,
                                  const data::LoaderOptions& options,
                                  dist::Communicator* ranks = nullptr);

// Moves the features (and labels) into GPU memory when `device` is a GPU and they fit: at most a
// quarter of the device, and the caching allocator grants it (a cap from --gpu_mem_frac
// included). Returns where they are: "GPU memory" or "host memory".
std::string keep_features_on_device(data::Dataset& features, Device device);

}  // namespace cyclone::train
