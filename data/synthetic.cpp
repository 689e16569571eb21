#include "cyclone/data/synthetic.h"

#include <cstring>
#include <vector>

#include "cyclone/core/error.h"
#include "cyclone/core/parallel.h"
#include "cyclone/data/random.h"

namespace cyclone::data {
namespace {

// Fills `n` bytes from the stream (seed, kSynthetic, epoch) starting at counter `first`: 16 bytes
// per Philox block.
void random_bytes(uint64_t seed, uint32_t epoch, uint64_t first, uint8_t* out, int64_t n) {
  for (int64_t k = 0; k < n; k += 16) {
    const philox::Block b = block(seed, Purpose::kSynthetic, epoch, first + k / 16);
    uint8_t bytes[16];
    std::memcpy(bytes, b.v, 16);
    std::memcpy(out + k, bytes, static_cast<size_t>(std::min<int64_t>(16, n - k)));
  }
}

}  // namespace

Dataset make_synthetic(const SyntheticOptions& o, const std::string& split) {
  CYCLONE_CHECK(split == "train" || split == "test", "synthetic: unknown split '", split,
                "' (train or test)");
  CYCLONE_CHECK(o.channels >= 1 && o.height >= 1 && o.width >= 1 && o.num_classes >= 1 &&
                    o.train_size >= 0 && o.test_size >= 0,
                "synthetic: bad shape ", o.channels, "x", o.height, "x", o.width, " with ",
                o.num_classes, " classes and sizes ", o.train_size, "/", o.test_size);
  const int64_t n = split == "train" ? o.train_size : o.test_size;
  const int64_t pixels = int64_t{o.channels} * o.height * o.width;
  CYCLONE_CHECK(pixels <= (int64_t{1} << 24) && n <= (int64_t{1} << 40) / pixels, "synthetic: ", n,
                " images of ", pixels, " pixels is too large");
  // Epoch words: 0 prototypes, 1 train images, 2 test images; counters per image are
  // ceil(pixels / 16) + 1 (one extra block for the label).
  const uint64_t per_image = static_cast<uint64_t>((pixels + 15) / 16 + 1);
  const uint32_t epoch = split == "train" ? 1u : 2u;
  std::vector<uint8_t> prototypes(static_cast<size_t>(pixels * o.num_classes));
  for (int c = 0; c < o.num_classes; ++c) {
    random_bytes(o.seed, 0, c * per_image, prototypes.data() + c * pixels, pixels);
  }
  Dataset d;
  d.name = "synthetic/" + split;
  d.num_classes = o.num_classes;
  d.images = Tensor::empty({n, o.channels, o.height, o.width}, DType::kUInt8, Device::cpu());
  d.labels = Tensor::empty({n}, DType::kInt32, Device::cpu());
  uint8_t* x = d.images.data<uint8_t>();
  int32_t* y = d.labels.data<int32_t>();
  parallel_for(n, 256, [&](int64_t begin, int64_t end) {
    std::vector<uint8_t> noise(static_cast<size_t>(pixels));
    for (int64_t i = begin; i < end; ++i) {
      const uint64_t base = static_cast<uint64_t>(i) * per_image;
      const philox::Block lb = block(o.seed, Purpose::kSynthetic, epoch, base);
      const auto label =
          static_cast<int32_t>(below32(lb.v[0], static_cast<uint32_t>(o.num_classes)));
      y[i] = label;
      random_bytes(o.seed, epoch, base + 1, noise.data(), pixels);
      const uint8_t* proto = prototypes.data() + label * pixels;
      uint8_t* out = x + i * pixels;
      for (int64_t p = 0; p < pixels; ++p) {
        out[p] = static_cast<uint8_t>((3 * proto[p] + noise[p]) / 4);
      }
    }
  });
  channel_stats(d, d.mean, d.std);
  validate(d);
  return d;
}

}  // namespace cyclone::data
