#include "cyclone/data/random.h"

#include <numeric>
#include <utility>

#include "cyclone/core/error.h"

namespace cyclone::data {

std::vector<int64_t> permutation(int64_t n, uint64_t seed, Purpose purpose, uint32_t epoch) {
  CYCLONE_CHECK(n >= 0, "permutation: negative size ", n);
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), int64_t{0});
  for (int64_t i = n - 1; i > 0; --i) {
    const philox::Block b = block(seed, purpose, epoch, static_cast<uint64_t>(i));
    const auto j = static_cast<int64_t>(below(b.v[0], b.v[1], static_cast<uint64_t>(i) + 1));
    std::swap(p[i], p[j]);
  }
  return p;
}

}  // namespace cyclone::data
