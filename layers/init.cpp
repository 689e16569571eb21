#include "cyclone/layers/init.h"

#include <algorithm>
#include <cmath>

#include "cyclone/core/context.h"
#include "cyclone/core/parallel.h"
#include "cyclone/core/spelling.h"
#include "cyclone/kernels/elementwise.h"
#include "cyclone/kernels/random.h"

namespace cyclone {

namespace {

// Stddev of a unit normal truncated to [-2, 2] (Keras' VarianceScaling divides by it).
constexpr double kTruncatedStd = 0.87962566103423978;
constexpr double kTruncation = 2.0;

enum class Dist { kTruncatedNormal, kNormal, kUniform, kConstant };
enum class Mode { kFanIn, kFanAvg, kNone };

struct Init {
  const char* name;
  Dist dist;
  Mode mode;
  double scale;  // variance scale (or the constant of kConstant)
};

// The registry (DESIGN.md: explicit, function-local). Each entry is a variance scaling: the draws
// have variance scale / n, n = fan_in or (fan_in + fan_out) / 2.
const std::vector<Init>& init_registry() {
  static const std::vector<Init> table = {
      {"he_normal", Dist::kTruncatedNormal, Mode::kFanIn, 2.0},
      {"he_uniform", Dist::kUniform, Mode::kFanIn, 2.0},
      {"glorot_normal", Dist::kTruncatedNormal, Mode::kFanAvg, 1.0},
      {"glorot_uniform", Dist::kUniform, Mode::kFanAvg, 1.0},
      {"lecun_normal", Dist::kTruncatedNormal, Mode::kFanIn, 1.0},
      {"lecun_uniform", Dist::kUniform, Mode::kFanIn, 1.0},
      {"zeros", Dist::kConstant, Mode::kNone, 0.0},
      {"ones", Dist::kConstant, Mode::kNone, 1.0},
      {"kaiming_normal", Dist::kNormal, Mode::kFanIn, 2.0},
      {"kaiming_uniform", Dist::kUniform, Mode::kFanIn, 2.0},
      {"xavier_normal", Dist::kNormal, Mode::kFanAvg, 1.0},
      {"xavier_uniform", Dist::kUniform, Mode::kFanAvg, 1.0},
  };
  return table;
}

// erf^-1(y) for |y| < 1: Giles' single-precision polynomial ("Approximating the erfinv function",
// GPU Gems 4, 2010) as the start, then two Newton steps on erf (the start is good to ~1e-7, so the
// error after them is at double rounding). Inputs here stay within |y| <= erf(sqrt 2) ~ 0.9545,
// where Newton converges quadratically from that start.
double erfinv(double y) {
  double w = -std::log((1.0 - y) * (1.0 + y));
  double p;
  if (w < 5.0) {
    w -= 2.5;
    p = 2.81022636e-08;
    p = 3.43273939e-07 + p * w;
    p = -3.5233877e-06 + p * w;
    p = -4.39150654e-06 + p * w;
    p = 0.00021858087 + p * w;
    p = -0.00125372503 + p * w;
    p = -0.00417768164 + p * w;
    p = 0.246640727 + p * w;
    p = 1.50140941 + p * w;
  } else {
    w = std::sqrt(w) - 3.0;
    p = -0.000200214257;
    p = 0.000100950558 + p * w;
    p = 0.00134934322 + p * w;
    p = -0.00367342844 + p * w;
    p = 0.00573950773 + p * w;
    p = -0.0076224613 + p * w;
    p = 0.00943887047 + p * w;
    p = 1.00167406 + p * w;
    p = 2.83297682 + p * w;
  }
  double x = p * y;
  constexpr double kTwoOverSqrtPi = 1.12837916709551257390;
  for (int it = 0; it < 2; ++it) x -= (std::erf(x) - y) / (kTwoOverSqrtPi * std::exp(-x * x));
  return x;
}

std::string valid_names() {
  std::string s;
  for (const Init& i : init_registry()) s += (s.empty() ? "" : ", ") + std::string(i.name);
  return s;
}

void fill_truncated_normal(const Tensor& w, double stddev, Generator& gen) {
  const int64_t n = w.numel();
  Tensor u = Tensor::empty({n}, DType::kFloat64, Device::cpu());
  kernels::uniform_(Context::current(Device::cpu()), u, 0.0, 1.0, gen);
  const double* pu = u.data<double>();
  Tensor host = Tensor::empty(w.shape(), w.dtype(), Device::cpu());
  const double bound = kTruncation * stddev;
  CYCLONE_DISPATCH_FLOAT(w.dtype(), T, [&] {
    T* ph = host.data<T>();
    // Each element is a pure function of its uniform, so threads do not change the result.
    parallel_for(n, 1 << 14, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        // Rounding may step a hair outside the interval; the clamp keeps the documented bound.
        const double v = std::clamp(stddev * truncated_normal_from_uniform(pu[i]), -bound, bound);
        ph[i] = static_cast<T>(v);
      }
    });
  });
  w.copy_from(host);
}

}  // namespace

double truncated_normal_from_uniform(double u) {
  static const double lo = 0.5 * std::erfc(kTruncation / std::sqrt(2.0));   // Phi(-2)
  static const double hi = 0.5 * std::erfc(-kTruncation / std::sqrt(2.0));  // Phi(2)
  const double p = lo + u * (hi - lo);
  return std::sqrt(2.0) * erfinv(2.0 * p - 1.0);
}

Fans fans(const Shape& s) {
  Fans f;
  if (s.rank() == 0) return f;
  if (s.rank() == 1) {
    f.fan_in = f.fan_out = s[0];
    return f;
  }
  const int64_t receptive = s.prod(2, s.rank());
  f.fan_in = s[1] * receptive;
  f.fan_out = s[0] * receptive;
  return f;
}

void init_tensor(const std::string& name, const Tensor& w, Generator& gen) {
  const auto& table = init_registry();
  const auto it =
      std::find_if(table.begin(), table.end(), [&](const Init& i) { return name == i.name; });
  if (it == table.end()) {
    std::vector<std::string> names;
    for (const Init& i : table) names.emplace_back(i.name);
    CYCLONE_THROW("unknown initializer '", name, "'", did_you_mean(name, names),
                  " (valid: ", valid_names(), ")");
  }
  CYCLONE_CHECK(w.defined(), "init_tensor(", name, "): the tensor is undefined");
  CYCLONE_CHECK(w.dtype() == DType::kFloat32 || w.dtype() == DType::kFloat64, "init_tensor(", name,
                "): needs a float32 or float64 tensor, got ", dtype_name(w.dtype()), " ",
                w.shape());
  Context& ctx = Context::of(w);
  if (it->dist == Dist::kConstant) return kernels::fill(ctx, w, it->scale);
  if (w.numel() == 0) return;  // nothing to draw (PyTorch warns and returns too)
  const Fans f = fans(w.shape());
  const double n = it->mode == Mode::kFanIn ? static_cast<double>(f.fan_in)
                                            : 0.5 * static_cast<double>(f.fan_in + f.fan_out);
  CYCLONE_CHECK(n > 0, "init_tensor(", name, "): zero fan for weight of shape ", w.shape());
  const double variance = it->scale / n;
  switch (it->dist) {
    case Dist::kTruncatedNormal:
      return fill_truncated_normal(w, std::sqrt(variance) / kTruncatedStd, gen);
    case Dist::kNormal:
      return kernels::normal_(ctx, w, 0.0, std::sqrt(variance), gen);
    case Dist::kUniform: {
      const double limit = std::sqrt(3.0 * variance);
      return kernels::uniform_(ctx, w, -limit, limit, gen);
    }
    case Dist::kConstant:
      break;
  }
}

std::vector<std::string> init_names() {
  std::vector<std::string> names;
  for (const Init& i : init_registry()) names.emplace_back(i.name);
  return names;
}

}  // namespace cyclone
