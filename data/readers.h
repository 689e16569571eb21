// Datasets from their standard files: an IDX pair (MNIST, Fashion-MNIST; raw or .gz) and CIFAR
// binary batches. Every check of data/idx.h and data/cifar.h applies, plus the pair's agreement:
// images uint8 of rank 3, labels uint8 of rank 1, equal counts, labels in [0, num_classes).
#pragma once

#include <string>
#include <vector>

#include "cyclone/data/cifar.h"
#include "cyclone/data/dataset.h"

namespace cyclone::data {

// images_path: IDX [N, H, W] uint8; labels_path: IDX [N] uint8. The result is [N, 1, H, W].
// mean / std: the per-channel statistics to carry (empty: computed from these images).
Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         const std::string& name, int num_classes, std::vector<float> mean = {},
                         std::vector<float> std = {});

// The records of all `paths`, in order, as one dataset of [N, 3, 32, 32] images. CIFAR-100 gives
// fine labels (100 classes) unless coarse (20 superclasses).
Dataset load_cifar_dataset(const std::vector<std::string>& paths, CifarKind kind, bool coarse,
                           const std::string& name, std::vector<float> mean = {},
                           std::vector<float> std = {});

}  // namespace cyclone::data
