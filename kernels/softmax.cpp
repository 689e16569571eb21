#include "cyclone/kernels/softmax.h"

#include <limits>

#include "cyclone/kernels/cpu/softmax.h"
#include "cyclone/kernels/cuda/softmax.h"
#include "cyclone/kernels/elementwise.h"

namespace cyclone::kernels {

namespace {

// x viewed as [rows, classes] over its last dimension; an empty class dimension is an error
// (softmax over nothing has no value).
void check_rows(const char* op, const Tensor& x) {
  check_float(op, x);
  CYCLONE_CHECK(x.rank() >= 1, op, ": needs at least one dimension, got x ", x.shape());
  CYCLONE_CHECK(x.dim(-1) > 0, op, ": the class dimension is empty: x ", x.shape());
}

void check_like(const char* op, const Tensor& x, const Tensor& y) {
  check_same_shape(op, x, y);
  check_same_dtype(op, x, y);
  check_same_device(op, x, y);
}

// logits [rows, classes] and int32 labels [rows] on one device.
void check_logits_labels(const char* op, const Tensor& logits, const Tensor& labels) {
  check_float(op, logits);
  CYCLONE_CHECK(logits.rank() == 2 && logits.dim(1) > 0, op,
                ": needs logits [rows, classes] with classes > 0, got logits ", logits.shape());
  CYCLONE_CHECK(labels.dtype() == DType::kInt32, op, ": labels must be int32, got ",
                dtype_name(labels.dtype()));
  CYCLONE_CHECK(
      labels.rank() == 1 && labels.dim(0) == logits.dim(0), op,
      ": labels must be [rows]: ", shapes_str({{"logits", &logits}, {"labels", &labels}}));
  check_same_device(op, logits, labels);
}

void check_scalar_like(const char* op, const char* name, const Tensor& t, const Tensor& like) {
  CYCLONE_CHECK(t.numel() == 1, op, ": ", name, " must have one element, got ", t.shape());
  CYCLONE_CHECK(t.dtype() == like.dtype(), op, ": ", name, " has dtype ", dtype_name(t.dtype()),
                ", expected ", dtype_name(like.dtype()));
  check_same_device(op, t, like);
}

void check_smoothing(const char* op, double eps) {
  CYCLONE_CHECK(eps >= 0.0 && eps <= 1.0, op, ": label_smoothing must be in [0, 1], got ", eps);
}

}  // namespace

void softmax_forward(Context& ctx, const Tensor& x, const Tensor& y) {
  check_rows("softmax", x);
  check_like("softmax", x, y);
  if (x.device().is_cuda()) return cuda::softmax_forward(ctx, x, y, false);
  cpu::softmax_forward(ctx, x, y, false);
}

void log_softmax_forward(Context& ctx, const Tensor& x, const Tensor& y) {
  check_rows("log_softmax", x);
  check_like("log_softmax", x, y);
  if (x.device().is_cuda()) return cuda::softmax_forward(ctx, x, y, true);
  cpu::softmax_forward(ctx, x, y, true);
}

void softmax_backward(Context& ctx, const Tensor& y, const Tensor& dy, const Tensor& dx) {
  check_rows("softmax_backward", y);
  check_like("softmax_backward", y, dy);
  check_like("softmax_backward", y, dx);
  if (y.device().is_cuda()) return cuda::softmax_backward(ctx, y, dy, dx, false);
  cpu::softmax_backward(ctx, y, dy, dx, false);
}

void log_softmax_backward(Context& ctx, const Tensor& y, const Tensor& dy, const Tensor& dx) {
  check_rows("log_softmax_backward", y);
  check_like("log_softmax_backward", y, dy);
  check_like("log_softmax_backward", y, dx);
  if (y.device().is_cuda()) return cuda::softmax_backward(ctx, y, dy, dx, true);
  cpu::softmax_backward(ctx, y, dy, dx, true);
}

void softmax_cross_entropy_forward(Context& ctx, const Tensor& logits, const Tensor& labels,
                                   double label_smoothing, const Tensor& loss, const Tensor& lse) {
  const char* op = "softmax_cross_entropy";
  check_logits_labels(op, logits, labels);
  check_smoothing(op, label_smoothing);
  check_scalar_like(op, "loss", loss, logits);
  CYCLONE_CHECK(lse.rank() == 1 && lse.dim(0) == logits.dim(0), op,
                ": lse must be [rows]: ", shapes_str({{"logits", &logits}, {"lse", &lse}}));
  check_same_dtype(op, logits, lse);
  check_same_device(op, logits, lse);
  // The mean over no rows is NaN (as torch's mean reduction of an empty batch).
  if (logits.dim(0) == 0) return fill(ctx, loss, std::numeric_limits<double>::quiet_NaN());
  if (logits.device().is_cuda())
    return cuda::softmax_cross_entropy_forward(ctx, logits, labels, label_smoothing, loss, lse);
  cpu::softmax_cross_entropy_forward(ctx, logits, labels, label_smoothing, loss, lse);
}

void softmax_cross_entropy_backward(Context& ctx, const Tensor& logits, const Tensor& labels,
                                    double label_smoothing, const Tensor& lse, const Tensor& dloss,
                                    const Tensor& dlogits) {
  const char* op = "softmax_cross_entropy_backward";
  check_logits_labels(op, logits, labels);
  check_smoothing(op, label_smoothing);
  CYCLONE_CHECK(lse.rank() == 1 && lse.dim(0) == logits.dim(0), op,
                ": lse must be [rows]: ", shapes_str({{"logits", &logits}, {"lse", &lse}}));
  check_same_dtype(op, logits, lse);
  check_same_device(op, logits, lse);
  check_scalar_like(op, "dloss", dloss, logits);
  check_like(op, logits, dlogits);
  if (logits.numel() == 0) return;
  if (logits.device().is_cuda())
    return cuda::softmax_cross_entropy_backward(ctx, logits, labels, label_smoothing, lse, dloss,
                                                dlogits);
  cpu::softmax_cross_entropy_backward(ctx, logits, labels, label_smoothing, lse, dloss, dlogits);
}

void argmax_rows(Context& ctx, const Tensor& x, const Tensor& out) {
  check_rows("argmax_rows", x);
  const int64_t rows = x.numel() / x.dim(-1);
  CYCLONE_CHECK(out.dtype() == DType::kInt32 && out.numel() == rows,
                "argmax_rows: out must be int32 with one element per row (", rows, "), got ",
                dtype_name(out.dtype()), " ", out.shape(), " for x ", x.shape());
  check_same_device("argmax_rows", x, out);
  if (rows == 0) return;
  if (x.device().is_cuda()) return cuda::argmax_rows(ctx, x, out);
  cpu::argmax_rows(ctx, x, out);
}

void topk_correct(Context& ctx, const Tensor& logits, const Tensor& labels, int k,
                  const Tensor& count) {
  const char* op = "topk_correct";
  check_logits_labels(op, logits, labels);
  CYCLONE_CHECK(k >= 1 && k <= logits.dim(1), op, ": k must be in [1, classes], got k ", k,
                " for logits ", logits.shape());
  CYCLONE_CHECK(count.dtype() == DType::kInt32 && count.numel() == 1, op,
                ": count must be one int32 element, got ", dtype_name(count.dtype()), " ",
                count.shape());
  check_same_device(op, logits, count);
  if (logits.device().is_cuda()) return cuda::topk_correct(ctx, logits, labels, k, count);
  cpu::topk_correct(ctx, logits, labels, k, count);
}

}  // namespace cyclone::kernels
