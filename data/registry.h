// The datasets Cyclone knows by name, where it looks for them, and how to load a split:
//   mnist          IDX files, default ./data/mnist                          (--data_dir)
//   fashion_mnist  IDX files, default /usr/share/datasets/fashion-mnist     (Debian's
//                  dataset-fashion-mnist package)
//   cifar10        binary batches, default ./data/cifar-10-batches-bin
//   cifar100       binary train.bin / test.bin, default ./data/cifar-100-binary
//   synthetic      generated (data/synthetic.h), no files
// One function-local table (DESIGN.md habit 9), no static registration. A missing dataset is one
// Error naming every file looked for, the directory, and how to get the files.
#pragma once

#include <string>
#include <vector>

#include "cyclone/data/dataset.h"
#include "cyclone/data/synthetic.h"

namespace cyclone::data {

struct DatasetInfo {
  std::string name = {};
  std::string default_dir = {};  // empty for synthetic
  std::string description = {};
  std::string how_to_get = {};  // one sentence for the missing-dataset error
  int num_classes = 0;
  int channels = 0, height = 0, width = 0;
  std::vector<float> mean = {}, std = {};  // published per-channel statistics of the training split
};

const std::vector<DatasetInfo>& dataset_infos();
// The entry for `name`; an unknown name is an Error listing the known ones.
const DatasetInfo& dataset_info(const std::string& name);

struct LoadOptions {
  std::string data_dir = {};  // empty: the dataset's default_dir
  // Missing files are fetched (data/fetch.h) unless download is false; `manifest` overrides the
  // built-in list of sources (data/manifest.h: also $CYCLONE_DATASET_MANIFEST).
  bool download = true;
  std::string manifest = {};
  bool coarse_labels = false;       // CIFAR-100: the 20 superclasses instead of the 100 classes
  SyntheticOptions synthetic = {};  // for "synthetic"
  // How the caller's user names another directory, for the missing-dataset error ("set
  // dataset.data_dir" in a config).
  std::string other_dir = "pass --data_dir=DIR";
};

// The split ("train" or "test") of dataset `name`, validated.
Dataset load_dataset(const std::string& name, const std::string& split,
                     const LoadOptions& options = {});

// The file names a dataset reads (both splits, the first spelling of each): what a fetch must
// leave in its directory. Empty for synthetic.
std::vector<std::string> dataset_file_names(const std::string& name);

// For each file both splits read, the names it may have on disk in the order the reader tries
// them (the first found is read). Empty for synthetic.
std::vector<std::vector<std::string>> dataset_file_spellings(const std::string& name);

// The files a split reads, as found in `dir` (an Error naming them all when any is missing).
std::vector<std::string> dataset_files(const std::string& name, const std::string& split,
                                       const std::string& dir,
                                       const std::string& other_dir = "pass --data_dir=DIR");

}  // namespace cyclone::data
