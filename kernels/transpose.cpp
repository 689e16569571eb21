#include "cyclone/kernels/transpose.h"

#include "cyclone/kernels/cpu/transpose.h"
#include "cyclone/kernels/cuda/transpose.h"

namespace cyclone::kernels {

void batched_transpose(Context& ctx, const Tensor& x, int64_t batch, int64_t rows, int64_t cols,
                       const Tensor& y) {
  const char* op = "batched_transpose";
  CYCLONE_CHECK(x.defined() && y.defined(), op, ": x and y must be defined");
  CYCLONE_CHECK(batch >= 0 && rows >= 0 && cols >= 0, op, ": bad view [", batch, ", ", rows, ", ",
                cols, "]");
  CYCLONE_CHECK(x.numel() == batch * rows * cols && y.numel() == x.numel(), op, ": x ", x.shape(),
                " and y ", y.shape(), " must both hold the ", batch * rows * cols,
                " elements of the view [", batch, ", ", rows, ", ", cols, "]");
  check_same_dtype(op, x, y);
  check_same_device(op, x, y);
  CYCLONE_CHECK(x.raw_data() != y.raw_data() || x.numel() == 0, op, ": y must not be x");
  if (x.numel() == 0) return;
  if (x.device().is_cuda())
    return cuda::batched_transpose(ctx, x.raw_data(), dtype_size(x.dtype()), batch, rows, cols,
                                   y.raw_data());
  cpu::batched_transpose(ctx, x.raw_data(), dtype_size(x.dtype()), batch, rows, cols, y.raw_data());
}

namespace {
void check_rank4(const char* op, const Tensor& x) {
  CYCLONE_CHECK(x.defined() && x.rank() == 4, op, ": needs a rank-4 tensor, got ",
                x.defined() ? x.shape().str() : "undefined");
}
}  // namespace

Tensor to_channels_last(Context& ctx, const Tensor& x) {
  check_rank4("to_channels_last", x);
  Tensor y = Tensor::empty({x.dim(0), x.dim(2), x.dim(3), x.dim(1)}, x.dtype(), ctx);
  batched_transpose(ctx, x, x.dim(0), x.dim(1), x.dim(2) * x.dim(3), y);
  return y;
}

Tensor to_channels_first(Context& ctx, const Tensor& x) {
  check_rank4("to_channels_first", x);
  Tensor y = Tensor::empty({x.dim(0), x.dim(3), x.dim(1), x.dim(2)}, x.dtype(), ctx);
  batched_transpose(ctx, x, x.dim(0), x.dim(1) * x.dim(2), x.dim(3), y);
  return y;
}

}  // namespace cyclone::kernels
