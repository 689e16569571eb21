#include "cyclone/data/augment.h"

#include <algorithm>

#include "cyclone/core/error.h"
#include "cyclone/data/random.h"

namespace cyclone::data {

std::string describe(const Augment& a) {
  std::string s;
  const auto add = [&s](const std::string& part) { s += (s.empty() ? "" : ", ") + part; };
  if (a.crop_padding > 0) add("crop with " + std::to_string(a.crop_padding) + "-pixel padding");
  if (a.flip) add("horizontal flip");
  if (a.cutout > 0) add("cutout " + std::to_string(a.cutout));
  return s.empty() ? "none" : s;
}

SampleParams sample_params(const Augment& a, int height, int width, uint64_t seed, uint32_t epoch,
                           uint64_t position) {
  SampleParams p;
  if (!a.any()) return p;
  // Word 0: crop y, word 1: crop x, word 2: flip (top bit), word 3: cutout centre (16 bits each).
  const philox::Block b = block(seed, Purpose::kAugment, epoch, position);
  if (a.crop_padding > 0) {
    const auto span = static_cast<uint32_t>(2 * a.crop_padding + 1);
    p.oy = static_cast<int>(below32(b.v[0], span));
    p.ox = static_cast<int>(below32(b.v[1], span));
  } else {
    p.oy = p.ox = 0;
  }
  p.flip = a.flip && (b.v[2] >> 31) != 0;
  if (a.cutout > 0) {
    p.cy = static_cast<int>(((b.v[3] >> 16) * static_cast<uint32_t>(height)) >> 16);
    p.cx = static_cast<int>(((b.v[3] & 0xFFFFu) * static_cast<uint32_t>(width)) >> 16);
  }
  return p;
}

std::vector<float> normalization_table(const std::vector<float>& mean,
                                       const std::vector<float>& std) {
  CYCLONE_CHECK(mean.size() == std.size() && !mean.empty(), "normalization: ", mean.size(),
                " means and ", std.size(), " stds");
  std::vector<float> t(mean.size() * 256);
  for (size_t c = 0; c < mean.size(); ++c) {
    CYCLONE_CHECK(std[c] > 0, "normalization: std of channel ", c, " is ", std[c]);
    for (int v = 0; v < 256; ++v) {
      // In double, then rounded once: the table matches (x/255 - m)/s computed in float to ~1 ulp.
      t[c * 256 + v] = static_cast<float>((v / 255.0 - mean[c]) / std[c]);
    }
  }
  return t;
}

void transform_image(const uint8_t* src, int channels, int height, int width, const float* table,
                     const Augment& a, const SampleParams& p, float* dst) {
  const int pad = a.crop_padding;
  const int dy = pad > 0 ? p.oy - pad : 0;  // source row = y + dy
  const int dx = pad > 0 ? p.ox - pad : 0;  // source column = x + dx (before the flip)
  const bool flip = a.flip && p.flip;
  for (int c = 0; c < channels; ++c) {
    const float* lut = table + c * 256;
    const float fill = lut[0];  // a padded (black) pixel
    const uint8_t* plane = src + static_cast<int64_t>(c) * height * width;
    for (int y = 0; y < height; ++y) {
      float* out = dst + (static_cast<int64_t>(c) * height + y) * width;
      const int sy = y + dy;
      if (sy < 0 || sy >= height) {
        std::fill(out, out + width, fill);
        continue;
      }
      const uint8_t* row = plane + static_cast<int64_t>(sy) * width;
      // Output columns whose source column x' = x + dx (crop) lies inside the image; with a flip
      // the output column x reads crop column W-1-x.
      // Clamped so that a padding wider than the image leaves an empty range, not a negative one.
      const int lo = std::clamp(-dx, 0, width), hi = std::clamp(width - dx, lo, width);
      if (!flip) {
        std::fill(out, out + lo, fill);
        for (int x = lo; x < hi; ++x) out[x] = lut[row[x + dx]];
        std::fill(out + hi, out + width, fill);
      } else {
        // out[x] = crop[W-1-x]: crop column k = W-1-x is valid for k in [lo, hi), i.e.
        // x in (W-1-hi, W-1-lo].
        const int xlo = width - hi, xhi = width - lo;  // output columns [xlo, xhi)
        std::fill(out, out + xlo, fill);
        for (int x = xlo; x < xhi; ++x) out[x] = lut[row[width - 1 - x + dx]];
        std::fill(out + xhi, out + width, fill);
      }
    }
  }
  if (a.cutout > 0) {
    const int y0 = std::clamp(p.cy - a.cutout / 2, 0, height);
    const int y1 = std::clamp(p.cy + a.cutout / 2, 0, height);
    const int x0 = std::clamp(p.cx - a.cutout / 2, 0, width);
    const int x1 = std::clamp(p.cx + a.cutout / 2, 0, width);
    for (int c = 0; c < channels; ++c) {
      for (int y = y0; y < y1; ++y) {
        float* out = dst + (static_cast<int64_t>(c) * height + y) * width;
        std::fill(out + x0, out + x1, 0.f);
      }
    }
  }
}

}  // namespace cyclone::data
