#include "cyclone/core/gradcheck.h"

#include <cmath>
#include <sstream>

#include "cyclone/core/autograd.h"

namespace cyclone {

namespace {

std::vector<double> projection(int64_t n, uint64_t seed) {
  // splitmix64 -> uniform in [0.5, 1.5) with random sign: no element of y is ignored.
  std::vector<double> w(static_cast<size_t>(n));
  uint64_t x = seed;
  for (auto& v : w) {
    uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const double u = static_cast<double>(z >> 11) * 0x1.0p-53;
    v = (z & 1 ? -1.0 : 1.0) * (0.5 + u);
  }
  return w;
}

double weighted_sum(const Tensor& y, const std::vector<double>& w) {
  const std::vector<double> v = y.to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += w[i] * v[i];
  return s;
}

}  // namespace

GradCheckResult gradcheck(const GradFn& f, const std::vector<Tensor>& inputs,
                          const GradCheckOptions& o) {
  for (const Tensor& t : inputs)
    CYCLONE_CHECK(!t.defined() || t.dtype() == DType::kFloat64,
                  "gradcheck needs float64 inputs, got ", dtype_name(t.dtype()), " on ",
                  t.device());
  GradCheckResult r;

  // Analytic gradients.
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) t.zero_grad();
  Tensor y = f(inputs);
  CYCLONE_CHECK(y.dtype() == DType::kFloat64, "gradcheck: f returned ", dtype_name(y.dtype()));
  const std::vector<double> w = projection(y.numel(), o.seed);
  y.backward(Tensor::from_vector<double>(w, y.shape(), y.device()));

  std::ostringstream failures;
  int shown = 0;
  autograd::NoGradGuard no_grad;
  const double l0 = weighted_sum(f(inputs), w);
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    const Tensor g = x.grad();
    std::vector<double> analytic =
        g.defined() ? g.to_vector<double>() : std::vector<double>(x.numel(), 0.0);
    // Element j is set through a one-element view, so the input may live on any device.
    const std::vector<double> values = x.to_vector<double>();
    const Tensor flat = x.reshape({x.numel()});
    auto set = [&](int64_t j, double v) {
      flat.slice(j, j + 1).copy_from(Tensor::from_vector<double>({v}, {1}, Device::cpu()));
    };
    for (int64_t j = 0; j < x.numel(); ++j) {
      const double orig = values[static_cast<size_t>(j)];
      set(j, orig + o.eps);
      const double lp = weighted_sum(f(inputs), w);
      set(j, orig - o.eps);
      const double lm = weighted_sum(f(inputs), w);
      set(j, orig);
      const double numeric = (lp - lm) / (2 * o.eps);
      const double right = (lp - l0) / o.eps, left = (l0 - lm) / o.eps;
      const double tol = o.atol + o.rtol * std::abs(numeric);
      // A kink: the one-sided slopes disagree by far more than curvature could explain.
      if (std::abs(right - left) > 100 * tol + 1e-3 * (std::abs(right) + std::abs(left))) {
        ++r.skipped_kinks;
        continue;
      }
      ++r.checked;
      const double err = std::abs(analytic[j] - numeric);
      r.max_abs_error = std::max(r.max_abs_error, std::isnan(err) ? INFINITY : err);
      if (!(err <= tol)) {
        r.ok = false;
        if (shown++ < 5)
          failures << "input " << k << " element " << j << ": analytic " << analytic[j]
                   << " vs numeric " << numeric << "; ";
      }
    }
  }
  r.message = failures.str();
  if (r.ok && r.checked == 0) {
    r.ok = false;
    r.message = "no element was checked (every input is a kink, or none requires grad)";
  }
  return r;
}

}  // namespace cyclone
