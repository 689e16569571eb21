// A synthetic dataset of any shape and class count, deterministic from the seed, for tests and
// speed measurements (CIFAR-10's shape and sizes by default). Image i of a split is a pure function
// of (seed, split, i): its label is drawn uniformly, and its pixels are
//   x = (3 * prototype[label][p] + noise[i][p]) / 4      (uint8, integer division)
// with one uniformly random prototype image per class and uniform byte noise, so the classes are
// separable (a linear model learns them) yet no two images are equal.
#pragma once

#include <cstdint>
#include <string>

#include "cyclone/data/dataset.h"

namespace cyclone::data {

struct SyntheticOptions {
  int channels = 3, height = 32, width = 32;
  int num_classes = 10;
  int64_t train_size = 50000, test_size = 10000;
  uint64_t seed = 0;
};

// split: "train" or "test". Generated in parallel (core/parallel.h), same bytes on any thread
// count. Mean / std are computed from the generated images.
Dataset make_synthetic(const SyntheticOptions& options, const std::string& split);

}  // namespace cyclone::data
