#include "cyclone/data/readers.h"

#include <algorithm>
#include <cstring>

#include "cyclone/core/error.h"
#include "cyclone/core/file_util.h"
#include "cyclone/data/gzip.h"
#include "cyclone/data/idx.h"

namespace cyclone::data {
namespace {

void finish(Dataset& d, std::vector<float> mean, std::vector<float> std) {
  if (mean.empty() || std.empty()) {
    channel_stats(d, mean, std);
  }
  d.mean = std::move(mean);
  d.std = std::move(std);
  validate(d);
}

// An IDX file read no further than its header allows: a header of 2000 images in front of a
// gigabyte, or a gzip bomb behind such a header, is refused having read the header, where the
// whole gigabyte was read (and decompressed) before the comparison.
std::vector<uint8_t> read_idx_file(const std::string& path, int rank) {
  const FileHead head = read_file_head(path, 4 + 4 * 255);  // the largest IDX header
  // Too short to hold a header (or gzip data cut inside it): the full read says what is wrong.
  if (head.bytes.size() < 4 || head.bytes.size() < 4 + 4 * size_t{head.bytes[3]})
    return read_file(path);
  const uint64_t want = idx_file_size(head.bytes.data(), head.bytes.size(), path, rank);
  if (!head.gzip) {
    const uint64_t on_disk = file_size(path);
    // A size other than the header's: parse_idx's error, from the header bytes alone.
    if (on_disk != want) parse_idx(head.bytes.data(), on_disk, path, rank);
    return read_file(path);
  }
  return read_file(path, std::min<uint64_t>(want, kMaxFileBytes),
                   "the size its IDX header gives; the header is wrong", kMaxFileBytes);
}

}  // namespace

Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         const std::string& name, int num_classes, std::vector<float> mean,
                         std::vector<float> std) {
  const std::vector<uint8_t> ib = read_idx_file(images_path, 3);
  const IdxView iv = parse_idx(ib.data(), ib.size(), images_path, 3);
  CYCLONE_CHECK(iv.type == 0x08, images_path, ": IDX images of type ", idx_type_name(iv.type),
                " (byte offset 2), uint8 (0x08) expected");
  const std::vector<uint8_t> lb = read_idx_file(labels_path, 1);
  const IdxView lv = parse_idx(lb.data(), lb.size(), labels_path, 1);
  CYCLONE_CHECK(lv.type == 0x08, labels_path, ": IDX labels of type ", idx_type_name(lv.type),
                " (byte offset 2), uint8 (0x08) expected");
  // An empty set would be trained on as nothing or scored as loss 0, accuracy 0.
  CYCLONE_CHECK(iv.count() > 0, images_path,
                ": holds no image (its IDX header says 0 at byte offset 4); fetch the dataset "
                "again or point the data directory at a complete copy");
  CYCLONE_CHECK(iv.count() == lv.count(), name, ": ", images_path, " holds ", iv.count(),
                " images but ", labels_path, " holds ", lv.count(),
                " labels (header byte offset 4); the files do not belong together");
  for (int64_t i = 0; i < lv.count(); ++i) {
    CYCLONE_CHECK(lv.data[i] < num_classes, labels_path, ": label ", int{lv.data[i]}, " of item ",
                  i, " at byte offset ", lv.data_offset + i, " is outside [0, ", num_classes, ")");
  }
  Dataset d;
  d.name = name;
  d.num_classes = num_classes;
  const int64_t n = iv.dims[0], h = iv.dims[1], w = iv.dims[2];
  d.images = Tensor::empty({n, 1, h, w}, DType::kUInt8, Device::cpu());
  if (n * h * w > 0) std::memcpy(d.images.raw_data(), iv.data, static_cast<size_t>(n * h * w));
  d.labels = Tensor::empty({n}, DType::kInt32, Device::cpu());
  int32_t* y = d.labels.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) y[i] = lv.data[i];
  finish(d, std::move(mean), std::move(std));
  return d;
}

Dataset load_cifar_dataset(const std::vector<std::string>& paths, CifarKind kind, bool coarse,
                           const std::string& name, std::vector<float> mean,
                           std::vector<float> std) {
  CYCLONE_CHECK(!paths.empty(), name, ": no CIFAR files given");
  // Read and validate every file before allocating the whole: a bad last batch costs no copy.
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<CifarView> views;
  int64_t n = 0;
  for (const std::string& p : paths) {
    bytes.push_back(read_file(p));
    views.push_back(parse_cifar(bytes.back().data(), bytes.back().size(), p, kind));
    n += views.back().count;
  }
  Dataset d;
  d.name = name;
  d.num_classes = kind == CifarKind::kCifar10 ? 10 : (coarse ? 20 : 100);
  d.images =
      Tensor::empty({n, kCifarChannels, kCifarSide, kCifarSide}, DType::kUInt8, Device::cpu());
  d.labels = Tensor::empty({n}, DType::kInt32, Device::cpu());
  uint8_t* x = d.images.data<uint8_t>();
  int32_t* y = d.labels.data<int32_t>();
  int64_t k = 0;
  for (const CifarView& v : views) {
    for (int64_t i = 0; i < v.count; ++i, ++k) {
      std::memcpy(x + k * kCifarPixels, v.pixels(i), kCifarPixels);
      y[k] = v.label(i, coarse);
    }
  }
  finish(d, std::move(mean), std::move(std));
  return d;
}

}  // namespace cyclone::data
