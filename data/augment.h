// Per-sample transforms from a uint8 [C, H, W] image to the float [C, H, W] a model reads, in one
// pass: normalisation, and optionally the standard CIFAR augmentation.
//   normalise: y = (x / 255 - mean[c]) / std[c]  (torchvision ToTensor + Normalize), by a
//              256-entry table per channel, so a pixel costs one load.
//   crop:      torchvision RandomCrop(size=(H, W), padding=p): pad every side with p zero
//              pixels (black, i.e. normalised to -mean/std), take the H x W window at offsets
//              (oy, ox) uniform in [0, 2p]^2.
//   flip:      RandomHorizontalFlip(0.5), applied to the crop: out[y][x] = crop[y][W-1-x].
//   cutout:    DeVries & Taylor 2017 ("Improved Regularization of Convolutional Neural Networks
//              with Cutout"), their reference code: a centre (cy, cx) uniform over the image, rows
//              [cy - L/2, cy + L/2) and columns likewise (clipped) set to 0 after normalisation.
// The random choices of a sample come from one Philox block of (seed, kAugment, epoch, position
// of the sample in the epoch), so they do not depend on which thread draws them.
// Cost per image: C*H*W table loads and float stores (12 KiB written for CIFAR), no arithmetic.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cyclone::data {

struct Augment {
  int crop_padding = 0;  // p above; 0 = no crop
  bool flip = false;
  int cutout = 0;  // L above; 0 = no cutout
  bool any() const { return crop_padding > 0 || flip || cutout > 0; }
  // The standard CIFAR augmentation: crop 32 with 4-pixel padding, horizontal flip.
  static Augment cifar() { return Augment{4, true, 0}; }
};

// In words, for logs and summaries: "none", or e.g. "crop with 4-pixel padding, horizontal flip".
std::string describe(const Augment& a);

struct SampleParams {
  int oy = 0, ox = 0;  // crop offsets in the padded image, [0, 2p]
  bool flip = false;
  int cy = 0, cx = 0;  // cutout centre
};

SampleParams sample_params(const Augment& a, int height, int width, uint64_t seed, uint32_t epoch,
                           uint64_t position);

// table[c * 256 + v] = (v / 255 - mean[c]) / std[c].
std::vector<float> normalization_table(const std::vector<float>& mean,
                                       const std::vector<float>& std);

// dst[c][y][x] for one image: the transforms above with params p (ignored where `a` is off).
void transform_image(const uint8_t* src, int channels, int height, int width, const float* table,
                     const Augment& a, const SampleParams& p, float* dst);

}  // namespace cyclone::data
