#include "cyclone/kernels/cpu/elementwise.h"

#include <cstring>

#include "cyclone/core/parallel.h"
#include "cyclone/kernels/cast.h"

namespace cyclone::kernels::cpu {

// Elements per parallel chunk: big enough that a thread's wake-up is paid for many times over.
constexpr int64_t kGrain = 1 << 18;

void unary(Context&, UnaryOp op, const Tensor& x, const Tensor& out, double a, double b) {
  const int64_t n = x.numel();
  CYCLONE_DISPATCH_FLOATING(x.dtype(), T, [&] {
    using M = math_t<T>;  // bfloat16 is computed in float
    const T* px = x.data<T>();
    T* po = out.data<T>();
    const M ma = static_cast<M>(a), mb = static_cast<M>(b);
    dispatch_unary(op, [&]<UnaryOp kOp>() {
      parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) po[i] = T(unary_fn<kOp, M>(M(px[i]), ma, mb));
      });
    });
  });
}

void binary(Context&, BinaryOp op, const Tensor& x, const Tensor& y, const Tensor& out) {
  const int64_t n = out.numel();
  const BroadcastIndex ix = broadcast_index(x, out.shape());
  const BroadcastIndex iy = broadcast_index(y, out.shape());
  CYCLONE_DISPATCH_FLOATING(x.dtype(), T, [&] {
    using M = math_t<T>;
    const T* px = x.data<T>();
    const T* py = y.data<T>();
    T* po = out.data<T>();
    dispatch_binary(op, [&]<BinaryOp kOp>() {
      const bool full = ix.mode == Broadcast::kFull && iy.mode == Broadcast::kFull;
      parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) {
        if (full) {
          for (int64_t i = lo; i < hi; ++i) po[i] = T(binary_fn<kOp, M>(M(px[i]), M(py[i])));
        } else {
          for (int64_t i = lo; i < hi; ++i)
            po[i] = T(binary_fn<kOp, M>(M(px[ix(i)]), M(py[iy(i)])));
        }
      });
    });
  });
}

void increment(Context&, const Tensor& counter) {
  int32_t* p = counter.data<int32_t>();
  for (int64_t i = 0, n = counter.numel(); i < n; ++i) ++p[i];
}

void fill(Context&, const Tensor& out, double value) {
  const int64_t n = out.numel();
  CYCLONE_DISPATCH_ALL(out.dtype(), T, [&] {
    T* p = out.data<T>();
    const T v = convert<T>(value);
    for (int64_t i = 0; i < n; ++i) p[i] = v;
  });
}

void cast(Context&, const Tensor& x, const Tensor& out) {
  const int64_t n = x.numel();
  CYCLONE_DISPATCH_ALL(x.dtype(), From, [&] {
    const From* px = x.data<From>();
    CYCLONE_DISPATCH_ALL(out.dtype(), To, [&] {
      To* po = out.data<To>();
      for (int64_t i = 0; i < n; ++i) po[i] = convert<To>(px[i]);
    });
  });
}

void gather_rows(Context&, const Tensor& src, const Tensor& index, const Tensor& out) {
  const int64_t rows = src.dim(0);
  const size_t row_bytes = rows ? src.nbytes() / static_cast<size_t>(rows) : 0;
  const int32_t* idx = index.data<int32_t>();
  const auto* from = static_cast<const uint8_t*>(src.raw_data());
  auto* to = static_cast<uint8_t*>(out.raw_data());
  for (int64_t b = 0; b < index.numel(); ++b) {
    CYCLONE_CHECK(idx[b] >= 0 && idx[b] < rows, "gather_rows: index ", idx[b], " at ", b,
                  " is outside [0, ", rows, ")");
    std::memcpy(to + b * row_bytes, from + static_cast<size_t>(idx[b]) * row_bytes, row_bytes);
  }
}

}  // namespace cyclone::kernels::cpu
