#include "cyclone/kernels/cpu/random.h"

#include "cyclone/core/philox.h"
#include "cyclone/kernels/random_ops.h"

namespace cyclone::kernels::cpu {
namespace {

// One functor call per counter; the last, partial counter computes all V values and keeps the
// first n % V (the same values the CUDA grid keeps). Single-threaded: a thread split would not
// change the values, only the time.
template <class T, class Op>
void fill(const Tensor& out, uint64_t seed, uint64_t offset, const Op& op) {
  constexpr int kV = philox::kValuesPerCounter<T>;
  T* p = out.data<T>();
  const int64_t n = out.numel();
  const int64_t full = n / kV;
  for (int64_t j = 0; j < full; ++j) op(seed, offset + static_cast<uint64_t>(j), p + j * kV);
  if (const int64_t rest = n - full * kV; rest > 0) {
    T v[kV];
    op(seed, offset + static_cast<uint64_t>(full), v);
    for (int64_t k = 0; k < rest; ++k) p[full * kV + k] = v[k];
  }
}

}  // namespace

void uniform_(Context&, const Tensor& out, double lo, double hi, uint64_t seed, uint64_t offset) {
  CYCLONE_DISPATCH_FLOAT(out.dtype(), T, [&] {
    fill<T>(out, seed, offset, random_ops::Uniform<T>{static_cast<T>(lo), static_cast<T>(hi - lo)});
  });
}

void normal_(Context&, const Tensor& out, double mean, double std, uint64_t seed, uint64_t offset) {
  CYCLONE_DISPATCH_FLOAT(out.dtype(), T, [&] {
    fill<T>(out, seed, offset, random_ops::Normal<T>{static_cast<T>(mean), static_cast<T>(std)});
  });
}

void bernoulli_(Context&, const Tensor& out, double p, uint64_t seed, uint64_t offset) {
  CYCLONE_DISPATCH_FLOAT(out.dtype(), T, [&] {
    fill<T>(out, seed, offset, random_ops::Bernoulli<T>{static_cast<T>(p)});
  });
}

}  // namespace cyclone::kernels::cpu
