#include "cyclone/data/dataset.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "cyclone/core/error.h"
#include "cyclone/data/random.h"

namespace cyclone::data {

void validate(const Dataset& d) {
  CYCLONE_CHECK(d.images.defined() && d.labels.defined(), d.name, ": images or labels missing");
  // Features kept in GPU memory (train/precompute.h): float32 images with labels on the same
  // device; their labels were checked when the features were made from a validated dataset.
  const bool resident = d.images.device().is_cuda();
  CYCLONE_CHECK((d.images.dtype() == DType::kUInt8 || d.images.dtype() == DType::kFloat32) &&
                    d.images.rank() == 4 && (!resident || d.images.dtype() == DType::kFloat32),
                d.name,
                ": images must be uint8 (or float32 features) [N, C, H, W] on the CPU, got ",
                dtype_name(d.images.dtype()), " ", d.images.shape(), " on ", d.images.device());
  CYCLONE_CHECK(d.labels.dtype() == DType::kInt32 && d.labels.rank() == 1 &&
                    d.labels.device() == d.images.device(),
                d.name, ": labels must be int32 [N] on the images' device, got ",
                dtype_name(d.labels.dtype()), " ", d.labels.shape(), " on ", d.labels.device());
  CYCLONE_CHECK(d.images.dim(0) == d.labels.dim(0), d.name, ": ", d.images.dim(0), " images but ",
                d.labels.dim(0), " labels");
  CYCLONE_CHECK(d.num_classes >= 1, d.name, ": num_classes must be >= 1, got ", d.num_classes);
  if (!resident) {
    const int32_t* y = d.labels.data<int32_t>();
    for (int64_t i = 0; i < d.size(); ++i) {
      CYCLONE_CHECK(y[i] >= 0 && y[i] < d.num_classes, d.name, ": label ", y[i], " of image ", i,
                    " is outside [0, ", d.num_classes, ")");
    }
  }
  const auto c = static_cast<size_t>(d.images.dim(1));
  CYCLONE_CHECK(d.mean.size() == c && d.std.size() == c, d.name, ": ", d.mean.size(), " means and ",
                d.std.size(), " stds for ", c, " channels");
  for (size_t i = 0; i < c; ++i) {
    CYCLONE_CHECK(std::isfinite(d.mean[i]) && d.std[i] > 0 && std::isfinite(d.std[i]), d.name,
                  ": channel ", i, " has mean ", d.mean[i], " std ", d.std[i],
                  " (finite, std > 0 needed)");
  }
}

void channel_stats(const Dataset& d, std::vector<float>& mean, std::vector<float>& std) {
  const int64_t n = d.images.dim(0), c = d.images.dim(1), hw = d.images.dim(2) * d.images.dim(3);
  const uint8_t* x = d.images.data<uint8_t>();
  // Integer histograms per channel make the result exact and independent of summation order.
  std::vector<std::vector<int64_t>> hist(c, std::vector<int64_t>(256, 0));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t ch = 0; ch < c; ++ch) {
      const uint8_t* p = x + (i * c + ch) * hw;
      int64_t* h = hist[ch].data();
      for (int64_t k = 0; k < hw; ++k) ++h[p[k]];
    }
  }
  mean.assign(c, 0.f);
  std.assign(c, 1.f);
  const double count = static_cast<double>(n * hw);
  if (count == 0) return;
  for (int64_t ch = 0; ch < c; ++ch) {
    double s = 0, s2 = 0;
    for (int v = 0; v < 256; ++v) {
      s += hist[ch][v] * (v / 255.0);
      s2 += hist[ch][v] * (v / 255.0) * (v / 255.0);
    }
    const double m = s / count;
    mean[ch] = static_cast<float>(m);
    const double var = std::max(0.0, s2 / count - m * m);
    // A constant channel has std 0; 1 keeps the normalisation finite (x - mean).
    std[ch] = var > 0 ? static_cast<float>(std::sqrt(var)) : 1.f;
  }
}

std::vector<int64_t> label_histogram(const Dataset& d) {
  std::vector<int64_t> h(d.num_classes, 0);
  const int32_t* y = d.labels.data<int32_t>();
  for (int64_t i = 0; i < d.size(); ++i) ++h[y[i]];
  return h;
}

Dataset subset(const Dataset& d, const std::vector<int64_t>& indices, const std::string& name) {
  const int64_t n = static_cast<int64_t>(indices.size());
  const size_t per = static_cast<size_t>(d.images.numel() / std::max<int64_t>(d.size(), 1));
  Dataset out;
  out.name = name;
  out.num_classes = d.num_classes;
  out.mean = d.mean;
  out.std = d.std;
  out.images = Tensor::empty({n, d.images.dim(1), d.images.dim(2), d.images.dim(3)}, DType::kUInt8,
                             Device::cpu());
  out.labels = Tensor::empty({n}, DType::kInt32, Device::cpu());
  const uint8_t* src = d.images.data<uint8_t>();
  const int32_t* ysrc = d.labels.data<int32_t>();
  uint8_t* dst = out.images.data<uint8_t>();
  int32_t* ydst = out.labels.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j = indices[i];
    CYCLONE_CHECK(j >= 0 && j < d.size(), d.name, ": subset index ", j, " outside [0, ", d.size(),
                  ")");
    std::memcpy(dst + i * per, src + j * per, per);
    ydst[i] = ysrc[j];
  }
  return out;
}

Dataset pad_images(const Dataset& d, int64_t size) {
  CYCLONE_CHECK(d.images.dtype() == DType::kUInt8, d.name, ": padding needs images (uint8), got ",
                dtype_name(d.images.dtype()));
  const int64_t n = d.images.dim(0), c = d.images.dim(1), h = d.images.dim(2), w = d.images.dim(3);
  CYCLONE_CHECK(size >= h && size >= w, d.name, ": cannot pad ", h, " x ", w, " images to ", size,
                " x ", size, " (pad_to must be at least the image size)");
  const int64_t top = (size - h) / 2, left = (size - w) / 2;
  Dataset out = d;
  out.images = Tensor::zeros({n, c, size, size}, DType::kUInt8, Device::cpu());
  const uint8_t* src = d.images.data<uint8_t>();
  uint8_t* dst = out.images.data<uint8_t>();
  for (int64_t plane = 0; plane < n * c; ++plane)
    for (int64_t y = 0; y < h; ++y)
      std::memcpy(dst + (plane * size + top + y) * size + left, src + (plane * h + y) * w,
                  static_cast<size_t>(w));
  return out;
}

Split split_validation(const Dataset& d, double fraction, uint64_t seed) {
  CYCLONE_CHECK(fraction >= 0 && fraction < 1, d.name, ": validation fraction ", fraction,
                " outside [0, 1)");
  const int64_t n = d.size();
  const auto n_val = static_cast<int64_t>(std::llround(fraction * static_cast<double>(n)));
  // An empty part would be scored (loss 0, accuracy 0) or trained on as if it held images.
  CYCLONE_CHECK(fraction == 0 || (n_val >= 1 && n_val < n), d.name, ": a validation fraction of ",
                fraction, " of ", n, " images is ", n_val, " images, leaving ", n - n_val,
                ": each part needs at least one image");
  const std::vector<int64_t> p = permutation(n, seed, Purpose::kSplit, 0);
  std::vector<int64_t> val(p.begin(), p.begin() + n_val), train(p.begin() + n_val, p.end());
  std::sort(val.begin(), val.end());
  std::sort(train.begin(), train.end());
  Split s;
  s.train = subset(d, train, d.name + "[train]");
  s.validation = subset(d, val, d.name + "[validation]");
  return s;
}

}  // namespace cyclone::data
