#include "cyclone/kernels/cpu/softmax.h"

#include <cmath>

namespace cyclone::kernels::cpu {

namespace {

// Rows of x viewed as [rows, classes] over its last dimension.
struct Rows {
  int64_t rows, classes;
  explicit Rows(const Tensor& x) : rows(x.numel() / x.dim(-1)), classes(x.dim(-1)) {}
};

int32_t checked_label(const char* op, const int32_t* labels, int64_t row, int64_t classes) {
  const int32_t l = labels[row];
  CYCLONE_CHECK(l >= 0 && l < classes, op, ": label ", l, " of row ", row, " is outside [0, ",
                classes, ")");
  return l;
}

// Orders logits as torch.topk / argmax do: NaN above every number, NaNs equal to each other.
template <class T>
bool above(T a, T b) {
  return (std::isnan(a) && !std::isnan(b)) || a > b;
}
template <class T>
bool same(T a, T b) {
  return a == b || (std::isnan(a) && std::isnan(b));
}

}  // namespace

void softmax_forward(Context&, const Tensor& x, const Tensor& y, bool log) {
  const Rows v(x);
  CYCLONE_DISPATCH_FLOAT(x.dtype(), T, [&] {
    for (int64_t r = 0; r < v.rows; ++r) {
      const T* px = x.data<T>() + r * v.classes;
      T* py = y.data<T>() + r * v.classes;
      T m = px[0];
      for (int64_t c = 1; c < v.classes; ++c) m = std::max(m, px[c]);
      T s = 0;
      for (int64_t c = 0; c < v.classes; ++c) s += std::exp(px[c] - m);
      if (log) {
        // (x - m) is exact near the max; subtracting m + log s at once would round at |m|'s scale.
        const T log_s = std::log(s);
        for (int64_t c = 0; c < v.classes; ++c) py[c] = (px[c] - m) - log_s;
      } else {
        const T inv = T(1) / s;
        for (int64_t c = 0; c < v.classes; ++c) py[c] = std::exp(px[c] - m) * inv;
      }
    }
  });
}

void softmax_backward(Context&, const Tensor& y, const Tensor& dy, const Tensor& dx, bool log) {
  const Rows v(y);
  CYCLONE_DISPATCH_FLOAT(y.dtype(), T, [&] {
    for (int64_t r = 0; r < v.rows; ++r) {
      const int64_t o = r * v.classes;
      const T* py = y.data<T>() + o;
      const T* pdy = dy.data<T>() + o;
      T* pdx = dx.data<T>() + o;
      T s = 0;
      if (log) {
        for (int64_t c = 0; c < v.classes; ++c) s += pdy[c];
        for (int64_t c = 0; c < v.classes; ++c) pdx[c] = pdy[c] - std::exp(py[c]) * s;
      } else {
        for (int64_t c = 0; c < v.classes; ++c) s += pdy[c] * py[c];
        for (int64_t c = 0; c < v.classes; ++c) pdx[c] = py[c] * (pdy[c] - s);
      }
    }
  });
}

void softmax_cross_entropy_forward(Context&, const Tensor& logits, const Tensor& labels,
                                   double label_smoothing, const Tensor& loss, const Tensor& lse) {
  const Rows v(logits);
  const int32_t* pl = labels.data<int32_t>();
  CYCLONE_DISPATCH_FLOAT(logits.dtype(), T, [&] {
    const T eps = static_cast<T>(label_smoothing);
    const T on = T(1) - eps, off = eps / static_cast<T>(v.classes);
    double total = 0;  // the mean over rows in double: batches can be large
    for (int64_t r = 0; r < v.rows; ++r) {
      const T* px = logits.data<T>() + r * v.classes;
      const int32_t label = checked_label("softmax_cross_entropy", pl, r, v.classes);
      T m = px[0];
      for (int64_t c = 1; c < v.classes; ++c) m = std::max(m, px[c]);
      T s = 0, sum_shifted = 0;
      for (int64_t c = 0; c < v.classes; ++c) {
        s += std::exp(px[c] - m);
        sum_shifted += px[c] - m;
      }
      const T log_s = std::log(s);
      lse.data<T>()[r] = m + log_s;
      // sum_c -q_c (x_c - lse) with sum_c q_c = 1, written relative to the max so that large
      // logits do not cancel: log s - on*(x_label - m) - off*sum_c (x_c - m). Without smoothing
      // the off term is absent, not 0 * sum: a masked -inf logit would make that 0 * -inf = NaN.
      const T smooth = off != T(0) ? off * sum_shifted : T(0);
      total += static_cast<double>(log_s - on * (px[label] - m) - smooth);
    }
    loss.data<T>()[0] = static_cast<T>(total / static_cast<double>(v.rows));
  });
}

void softmax_cross_entropy_backward(Context&, const Tensor& logits, const Tensor& labels,
                                    double label_smoothing, const Tensor& lse, const Tensor& dloss,
                                    const Tensor& dlogits) {
  const Rows v(logits);
  const int32_t* pl = labels.data<int32_t>();
  CYCLONE_DISPATCH_FLOAT(logits.dtype(), T, [&] {
    const T eps = static_cast<T>(label_smoothing);
    const T on = T(1) - eps, off = eps / static_cast<T>(v.classes);
    const T scale = dloss.data<T>()[0] / static_cast<T>(v.rows);
    for (int64_t r = 0; r < v.rows; ++r) {
      const T* px = logits.data<T>() + r * v.classes;
      T* pd = dlogits.data<T>() + r * v.classes;
      const int32_t label = checked_label("softmax_cross_entropy_backward", pl, r, v.classes);
      const T l = lse.data<T>()[r];
      for (int64_t c = 0; c < v.classes; ++c)
        pd[c] = (std::exp(px[c] - l) - (c == label ? on + off : off)) * scale;
    }
  });
}

void argmax_rows(Context&, const Tensor& x, const Tensor& out) {
  const Rows v(x);
  CYCLONE_DISPATCH_FLOAT(x.dtype(), T, [&] {
    for (int64_t r = 0; r < v.rows; ++r) {
      const T* px = x.data<T>() + r * v.classes;
      int64_t best = 0;
      for (int64_t c = 1; c < v.classes; ++c)
        if (above(px[c], px[best])) best = c;  // strict: ties keep the lower index
      out.data<int32_t>()[r] = static_cast<int32_t>(best);
    }
  });
}

void topk_correct(Context&, const Tensor& logits, const Tensor& labels, int k,
                  const Tensor& count) {
  const Rows v(logits);
  const int32_t* pl = labels.data<int32_t>();
  int64_t correct = 0;
  CYCLONE_DISPATCH_FLOAT(logits.dtype(), T, [&] {
    for (int64_t r = 0; r < v.rows; ++r) {
      const T* px = logits.data<T>() + r * v.classes;
      const int32_t label = checked_label("topk_correct", pl, r, v.classes);
      const T target = px[label];
      // The label's rank among the row: entries ordered before it (larger, or equal and at a lower
      // index). It is in the top k when fewer than k come first.
      int64_t before = 0;
      for (int64_t c = 0; c < v.classes && before < k; ++c)
        if (above(px[c], target) || (c < label && same(px[c], target))) ++before;
      if (before < k) ++correct;
    }
  });
  count.data<int32_t>()[0] = static_cast<int32_t>(correct);
}

}  // namespace cyclone::kernels::cpu
