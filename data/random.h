// The pipeline's random numbers: Philox4x32-10 (core/philox.h) keyed by the seed, with the
// counter's words 2 and 3, which tensor fills leave at zero, holding (epoch, purpose). So every
// shuffle, crop and flip is a pure function of (seed, purpose, epoch, index), whichever thread
// computes it, and never reuses a counter of a fill (initialisation, dropout) under the same seed.
//   block(seed, purpose, epoch, i) = philox4x32((lo32 i, hi32 i, epoch, purpose), (lo32 seed,
//                                                                              hi32 seed))
#pragma once

#include <cstdint>
#include <vector>

#include "cyclone/core/philox.h"

namespace cyclone::data {

enum class Purpose : uint32_t {
  kShuffle = 0xDA7A0001u,    // per-epoch permutation (epoch = the epoch)
  kAugment = 0xDA7A0002u,    // per-sample crop / flip / cutout (index = position in the epoch)
  kSplit = 0xDA7A0003u,      // train / validation split (epoch 0)
  kSynthetic = 0xDA7A0004u,  // synthetic images (epoch = split id)
};

inline philox::Block block(uint64_t seed, Purpose purpose, uint32_t epoch, uint64_t index) {
  return philox::philox4x32(
      philox::Block{{static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32), epoch,
                     static_cast<uint32_t>(purpose)}},
      static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// An integer uniform in [0, n) from 64 random bits, by multiply-shift (Lemire 2019, without the
// rejection step: the bias is below n / 2^64, far under anything a dataset size can show).
inline uint64_t below(uint32_t hi, uint32_t lo, uint64_t n) {
  const uint64_t x = (uint64_t{hi} << 32) | lo;
  __extension__ using u128 = unsigned __int128;  // a GCC / Clang extension: quiet under -pedantic
  return static_cast<uint64_t>((static_cast<u128>(x) * n) >> 64);
}
// The same from 32 bits (n small, e.g. a crop offset): bias below n / 2^32.
inline uint32_t below32(uint32_t x, uint32_t n) {
  return static_cast<uint32_t>((uint64_t{x} * n) >> 32);
}

// A uniformly random permutation of [0, n): Fisher-Yates (Durstenfeld), position i (from n-1 down
// to 1) swapped with j uniform in [0, i], j drawn from block(seed, purpose, epoch, i).
std::vector<int64_t> permutation(int64_t n, uint64_t seed, Purpose purpose, uint32_t epoch);

}  // namespace cyclone::data
