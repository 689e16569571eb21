// The CPU loop of the optimizer updates: per tensor, the coefficients of optim_math.h once, then
// the element function over the tensor in parallel chunks.
#include "cyclone/kernels/cpu/optim_update.h"

#include "cyclone/core/parallel.h"

namespace cyclone::kernels::cpu {

namespace {
// Elements per parallel chunk (an update is ~10 flops and up to 36 bytes per element).
constexpr int64_t kGrain = 1 << 16;

// kHas0..2: which state slots exist, as template flags so the loop has no per-element tests of
// them; cfg and c are copied to locals so the compiler knows the stores to p and the state do not
// change them (and keeps them in registers).
template <OptimAlgo kAlgo, class T, bool kHas0, bool kHas1, bool kHas2>
void update_tensor(const OptimConfig& config, const OptimCoeffs<T>& coeffs,
                   const OptimTensorArgs& t) {
  T* p = t.param.data<T>();
  const T* g = t.grad.data<T>();
  T* s0 = kHas0 ? t.state[0].data<T>() : nullptr;
  T* s1 = kHas1 ? t.state[1].data<T>() : nullptr;
  T* s2 = kHas2 ? t.state[2].data<T>() : nullptr;
  parallel_for(t.param.numel(), kGrain, [&](int64_t lo, int64_t hi) {
    const OptimConfig cfg = config;
    const OptimCoeffs<T> c = coeffs;
    for (int64_t i = lo; i < hi; ++i) {
      T a = kHas0 ? s0[i] : T(0), b = kHas1 ? s1[i] : T(0), d = kHas2 ? s2[i] : T(0);
      optim_element<kAlgo, T>(cfg, c, p[i], g[i], a, b, d);
      if constexpr (kHas0) s0[i] = a;
      if constexpr (kHas1) s1[i] = b;
      if constexpr (kHas2) s2[i] = d;
    }
  });
}

template <OptimAlgo kAlgo, class T>
void update_tensor(const OptimConfig& cfg, const OptimCoeffs<T>& c, const OptimTensorArgs& t,
                   unsigned mask) {
  switch (mask & 7u) {
    case 0:
      return update_tensor<kAlgo, T, false, false, false>(cfg, c, t);
    case 1:
      return update_tensor<kAlgo, T, true, false, false>(cfg, c, t);
    case 3:
      return update_tensor<kAlgo, T, true, true, false>(cfg, c, t);
    case 5:
      return update_tensor<kAlgo, T, true, false, true>(cfg, c, t);
    case 7:
      return update_tensor<kAlgo, T, true, true, true>(cfg, c, t);
    default:
      CYCLONE_THROW("optim_update: unexpected state slot mask ", mask);
  }
}
}  // namespace

void optim_update(Context&, const OptimPlan& plan, const OptimScalars& scalars) {
  const OptimConfig& cfg = plan.config();
  const unsigned mask = optim_slot_mask(cfg);
  CYCLONE_DISPATCH_FLOAT(plan.dtype(), T, [&] {
    dispatch_optim(cfg.algo, [&]<OptimAlgo kAlgo>() {
      for (const OptimTensorArgs& t : plan.tensors()) {
        double* mu_product = optim_has_mu_product(cfg) ? t.mu_product.data<double>() : nullptr;
        const auto c = optim_coeffs<T>(cfg, scalars, plan.groups()[static_cast<size_t>(t.group)],
                                       t.step_lag, mu_product);
        update_tensor<kAlgo, T>(cfg, c, t, mask);
        if (mu_product != nullptr) optim_store_mu_product(cfg, c, mu_product);
      }
    });
  });
}

}  // namespace cyclone::kernels::cpu
