#include "cyclone/data/registry.h"

#include <filesystem>

#include "cyclone/core/error.h"
#include "cyclone/data/fetch.h"
#include "cyclone/data/readers.h"

namespace cyclone::data {
namespace {

namespace fs = std::filesystem;

const char* kMnistGet =
    "download the four files from https://yann.lecun.com/exdb/mnist/ (or a mirror such as "
    "https://ossci-datasets.s3.amazonaws.com/mnist/) into that directory (gzipped or not)";
const char* kFashionGet =
    "install Debian's package (apt-get install dataset-fashion-mnist) or download the files from "
    "https://github.com/zalandoresearch/fashion-mnist into that directory";
// "DIR" is replaced by the directory looked in (dataset_files).
const char* kCifar10Get =
    "download https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz and unpack its "
    "cifar-10-batches-bin folder's files into that directory (tar xzf cifar-10-binary.tar.gz "
    "--strip-components=1 -C DIR)";
const char* kCifar100Get =
    "download https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz and unpack its "
    "cifar-100-binary folder's files into that directory (tar xzf cifar-100-binary.tar.gz "
    "--strip-components=1 -C DIR)";

// For each file a split needs, the names it may have on disk (first found wins).
std::vector<std::vector<std::string>> candidates(const std::string& name,
                                                 const std::string& split) {
  const bool train = split == "train";
  if (name == "mnist" || name == "fashion_mnist") {
    const std::string p = train ? "train" : "t10k";
    // The official names, gzipped or not; some mirrors spell them with a dot.
    return {{p + "-images-idx3-ubyte", p + "-images-idx3-ubyte.gz", p + "-images.idx3-ubyte"},
            {p + "-labels-idx1-ubyte", p + "-labels-idx1-ubyte.gz", p + "-labels.idx1-ubyte"}};
  }
  if (name == "cifar10") {
    if (!train) return {{"test_batch.bin"}};
    std::vector<std::vector<std::string>> v;
    for (int i = 1; i <= 5; ++i) v.push_back({"data_batch_" + std::to_string(i) + ".bin"});
    return v;
  }
  if (name == "cifar100") return {{train ? "train.bin" : "test.bin"}};
  return {};
}

}  // namespace

const std::vector<DatasetInfo>& dataset_infos() {
  static const std::vector<DatasetInfo> infos = {
      {"mnist",
       "./data/mnist",
       "MNIST handwritten digits (LeCun, Cortes, Burges), IDX files",
       kMnistGet,
       10,
       1,
       28,
       28,
       {0.1307f},
       {0.3081f}},
      {"fashion_mnist",
       "/usr/share/datasets/fashion-mnist",
       "Fashion-MNIST (Zalando Research), IDX files",
       kFashionGet,
       10,
       1,
       28,
       28,
       {0.2860f},
       {0.3530f}},
      {"cifar10",
       "./data/cifar-10-batches-bin",
       "CIFAR-10 (Krizhevsky 2009), binary version",
       kCifar10Get,
       10,
       3,
       32,
       32,
       {0.4914f, 0.4822f, 0.4465f},
       {0.2470f, 0.2435f, 0.2616f}},
      {"cifar100",
       "./data/cifar-100-binary",
       "CIFAR-100 (Krizhevsky 2009), binary version",
       kCifar100Get,
       100,
       3,
       32,
       32,
       {0.5071f, 0.4865f, 0.4409f},
       {0.2673f, 0.2564f, 0.2762f}},
      {"synthetic",
       "",
       "synthetic images, deterministic from the seed (default CIFAR-10's shape)",
       "",
       10,
       3,
       32,
       32,
       {},
       {}},
  };
  return infos;
}

const DatasetInfo& dataset_info(const std::string& name) {
  std::string known;
  for (const DatasetInfo& i : dataset_infos()) {
    if (i.name == name) return i;
    known += (known.empty() ? "" : ", ") + i.name;
  }
  CYCLONE_THROW("unknown dataset '", name, "' (known: ", known, ")");
}

std::vector<std::string> dataset_files(const std::string& name, const std::string& split,
                                       const std::string& dir, const std::string& other_dir) {
  const DatasetInfo& info = dataset_info(name);
  CYCLONE_CHECK(split == "train" || split == "test", name, ": unknown split '", split,
                "' (train or test)");
  std::vector<std::string> found, missing;
  for (const std::vector<std::string>& names : candidates(name, split)) {
    std::string hit;
    for (const std::string& n : names) {
      std::error_code ec;
      if (fs::exists(fs::path(dir) / n, ec)) {
        hit = (fs::path(dir) / n).string();
        break;
      }
    }
    if (hit.empty()) {
      std::string alts;
      for (const std::string& n : names) alts += (alts.empty() ? "" : " or ") + n;
      missing.push_back(alts);
    } else {
      found.push_back(hit);
    }
  }
  if (!missing.empty()) {
    std::string list;
    for (const std::string& m : missing) list += (list.empty() ? "" : ", ") + m;
    std::error_code ec;
    const bool dir_exists = fs::is_directory(dir, ec);
    const bool is_file = !dir_exists && fs::exists(dir, ec);
    std::string how = info.how_to_get;
    if (const auto at = how.find("-C DIR"); at != std::string::npos) how.replace(at + 3, 3, dir);
    CYCLONE_THROW(info.name, " (", split, " split) not found: looked in '", dir, "'",
                  dir_exists ? ""
                  : is_file  ? " (a file, not a directory)"
                             : " (no such directory)",
                  " for ", list, "; to get it, ", how, ", or ", other_dir);
  }
  return found;
}

std::vector<std::vector<std::string>> dataset_file_spellings(const std::string& name) {
  (void)dataset_info(name);  // an unknown name is an Error
  std::vector<std::vector<std::string>> out;
  for (const char* split : {"train", "test"})
    for (auto& names : candidates(name, split)) out.push_back(std::move(names));
  return out;
}

std::vector<std::string> dataset_file_names(const std::string& name) {
  std::vector<std::string> out;
  for (const auto& names : dataset_file_spellings(name)) out.push_back(names.front());
  return out;
}

Dataset load_dataset(const std::string& name, const std::string& split,
                     const LoadOptions& options) {
  const DatasetInfo& info = dataset_info(name);
  CYCLONE_CHECK(split == "train" || split == "test", name, ": unknown split '", split,
                "' (train or test)");
  if (name == "synthetic") return make_synthetic(options.synthetic, split);
  const std::string dir = options.data_dir.empty() ? info.default_dir : options.data_dir;
  // Fetch only when this split is missing (a directory holding just the test files still serves
  // them); the fetch then completes the whole dataset.
  bool split_present = true;
  try {
    dataset_files(name, split, dir);
  } catch (const Error&) {
    split_present = false;
  }
  if (options.download && !split_present) {
    FetchOptions fo;
    fo.manifest = options.manifest;
    fo.other_dir = options.other_dir;
    fetch_dataset(name, dir, fo);
  }
  const std::vector<std::string> files = dataset_files(name, split, dir, options.other_dir);
  const std::string label = name + "/" + split;
  if (name == "mnist" || name == "fashion_mnist") {
    Dataset d = load_idx_dataset(files[0], files[1], label, info.num_classes, info.mean, info.std);
    // The models are built for the published size (models/registry.h takes it from this table),
    // and the two splits must agree with them and with each other.
    CYCLONE_CHECK(d.height() == info.height && d.width() == info.width, label, ": the images in ",
                  files[0], " are ", d.height(), " x ", d.width(), ", but ", name, "'s are ",
                  info.height, " x ", info.width,
                  " (the size its models are built for); replace the file with the published "
                  "one");
    return d;
  }
  if (name == "cifar10") {
    return load_cifar_dataset(files, CifarKind::kCifar10, false, label, info.mean, info.std);
  }
  // CIFAR-100's published statistics hold for either labelling.
  return load_cifar_dataset(files, CifarKind::kCifar100, options.coarse_labels, label, info.mean,
                            info.std);
}

}  // namespace cyclone::data
