// A dataset in memory: every image as uint8 NCHW on the CPU (a quarter of float32's footprint;
// CIFAR-10's 50,000 training images are 150 MB) and int32 labels, plus the per-channel statistics
// the loader normalises with. Readers (data/readers.h), the synthetic generator
// (data/synthetic.h) and the registry (data/registry.h) make them; the loader (data/loader.h)
// turns them into float batches.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cyclone/core/tensor.h"

namespace cyclone::data {

struct Dataset {
  std::string name = {};  // e.g. "mnist/test", for messages
  Tensor images = {};     // uint8 [N, C, H, W], CPU (float32: precomputed features, see loader.h)
  Tensor labels = {};     // int32 [N], CPU, each in [0, num_classes)
  int num_classes = 0;
  // Per-channel mean and standard deviation of the pixel values scaled to [0, 1] (x / 255): the
  // published figures of the training split for the standard datasets, computed for others.
  std::vector<float> mean = {}, std = {};

  int64_t size() const { return labels.defined() ? labels.numel() : 0; }
  int channels() const { return static_cast<int>(images.dim(1)); }
  int height() const { return static_cast<int>(images.dim(2)); }
  int width() const { return static_cast<int>(images.dim(3)); }
};

// Checks the invariants above (shapes, dtypes, counts agree, labels in range, stats sized to the
// channels), naming the dataset. Every reader calls it before returning.
void validate(const Dataset& d);

// Mean and standard deviation per channel of x / 255 over the whole dataset (population std).
void channel_stats(const Dataset& d, std::vector<float>& mean, std::vector<float>& std);

// How many images of each class (size num_classes).
std::vector<int64_t> label_histogram(const Dataset& d);

// The images and labels at `indices` (in that order), a copy; stats and classes carried over.
Dataset subset(const Dataset& d, const std::vector<int64_t>& indices, const std::string& name);

// The images zero-padded (black) to size x size, centred (the odd pixel, if any, on the bottom and
// right), a copy: how CIFAR-shaped networks take 28x28 MNIST-like images (torchvision's Pad before
// ToTensor / Normalize, so the mean and std stay the dataset's). size at least the height and the
// width; uint8 images only (not precomputed features).
Dataset pad_images(const Dataset& d, int64_t size);

// Carves a validation set of round(fraction * N) images out of d, chosen by a permutation drawn
// from seed (data/random.h, Purpose::kSplit), so the split is reproducible from the seed alone.
// Both parts keep the original order of their images. fraction in [0, 1); a fraction > 0 must
// leave at least one image in each part.
struct Split {
  Dataset train = {}, validation = {};
};
Split split_validation(const Dataset& d, double fraction, uint64_t seed);

}  // namespace cyclone::data
