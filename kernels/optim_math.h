// Optimizer update math, written once as __host__ __device__ functions: the CPU loop of
// kernels/cpu/optim_update.cpp and the fused CUDA kernel of kernels/cuda/optim_update.cu call the
// same code, so the CPU-vs-CUDA parity test compares the same arithmetic (DESIGN.md habit 5).
//
// The formulas are PyTorch's (the pseudo-code of the torch.optim docs, single-tensor path). For a
// parameter p with gradient g at its step t (1-based, counted per parameter as PyTorch's
// state['step']), learning rate lr = base_lr * lr_mult of the parameter's group and weight decay
// wd of the group:
//
// SGD (torch.optim.SGD; momentum mu, dampening d):
//   g <- g + wd p
//   if mu != 0:  b <- g at t = 1, else b <- mu b + (1 - d) g
//                g <- g + mu b (nesterov) or g <- b
//   p <- p - lr g
//   cost: 2 flops + 4 (6 with b) element reads/writes per element.
//
// Adam (torch.optim.Adam; beta1, beta2, eps, amsgrad) and AdamW (torch.optim.AdamW):
//   Adam:  g <- g + wd p          AdamW: p <- p (1 - lr wd)   (decoupled decay, Loshchilov &
//   Hutter) m <- beta1 m + (1 - beta1) g v <- beta2 v + (1 - beta2) g^2 amsgrad: v_max <-
//   max(v_max, v), and v_max replaces v below p <- p - (lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 -
//   beta2^t) + eps) cost: ~12 flops + 1 sqrt + 1 div; 7 element reads/writes (9 with amsgrad).
//
// RMSprop (torch.optim.RMSprop; alpha, eps, centered, momentum mu):
//   g <- g + wd p
//   v <- alpha v + (1 - alpha) g^2
//   centered: a <- alpha a + (1 - alpha) g,  s = sqrt(v - a^2) + eps;  else s = sqrt(v) + eps
//   mu > 0: b <- mu b + g / s,  p <- p - lr b;  else p <- p - lr g / s
//   cost: ~8 flops + 1 sqrt + 1 div; 5 element reads/writes (+2 centered, +2 momentum).
//
// Scalars that depend on the step (lr, momentum/beta1, beta2/alpha, t) are read from
// OptimScalars, which the GPU path keeps in a device buffer so a captured CUDA graph can be
// replayed with new values. Per-step coefficients (bias corrections, lr * lr_mult) are computed in
// double by optim_coeffs() once per tensor chunk and applied in the parameter's dtype, as PyTorch
// applies Python-float scalars to float32 tensors.
//
// Slots: each parameter has up to three state tensors, in this order per algorithm (PyTorch's
// state names): SGD {momentum_buffer}; Adam {exp_avg, exp_avg_sq, max_exp_avg_sq};
// RMSprop {square_avg, momentum_buffer, grad_avg}. A later NAdam takes a new OptimAlgo, its own
// element function and coefficient case, and OptimScalars::extra for its running mu product.
#pragma once

#include <cmath>
#include <cstdint>

#include "cyclone/core/hd.h"

namespace cyclone::kernels {

enum class OptimAlgo : int32_t { kSgd = 0, kAdam = 1, kRmsprop = 2 };

inline constexpr int kOptimMaxSlots = 3;

// Options fixed for an optimizer's life: launch arguments, not part of the device buffer.
struct OptimConfig {
  OptimAlgo algo = OptimAlgo::kSgd;
  double dampening = 0;    // SGD
  bool nesterov = false;   // SGD
  double eps = 1e-8;       // Adam, RMSprop
  bool amsgrad = false;    // Adam
  bool decoupled = false;  // AdamW: decoupled weight decay
  bool centered = false;   // RMSprop
  // SGD / RMSprop: a momentum buffer exists (the optimizer was built with momentum > 0).
  bool has_momentum_buffer = false;
};

// The step's scalars: the layout of the device buffer the fused kernel reads (64 bytes).
struct OptimScalars {
  double lr = 0;                   // base learning rate, before group multipliers
  double momentum = 0;             // SGD / RMSprop momentum; Adam beta1
  double beta2 = 0;                // Adam beta2; RMSprop alpha
  double step = 0;                 // t: steps taken by the optimizer, this one included
  double extra[4] = {0, 0, 0, 0};  // reserved for later algorithms (NAdam's mu product)
};

// A parameter group's constants (device table next to the tensor table).
struct OptimGroupParams {
  double lr_mult = 1;
  double weight_decay = 0;
  double momentum = 0;  // used when has_momentum: replaces OptimScalars::momentum
  int32_t has_momentum = 0;
  int32_t pad = 0;
};

// What the element update needs for one tensor at one step, in the element type T.
template <class T>
struct OptimCoeffs {
  T lr, wd, momentum, one_minus_dampening, one_minus_momentum, beta2, one_minus_beta2;
  T step_size, bc2_sqrt, eps, decay;
  bool first, use_momentum;
};

// Coefficients of one tensor: `step_lag` is how many optimizer steps this tensor missed (steps in
// which it had no gradient), so its own t is scalars.step - step_lag, as PyTorch's per-parameter
// state['step'].
template <class T>
CYCLONE_HD OptimCoeffs<T> optim_coeffs(const OptimConfig& cfg, const OptimScalars& s,
                                       const OptimGroupParams& grp, double step_lag) {
  using std::pow, std::sqrt;
  const double t = s.step - step_lag;
  const double lr = s.lr * grp.lr_mult;
  const double mom = grp.has_momentum ? grp.momentum : s.momentum;
  OptimCoeffs<T> c{};
  c.lr = T(lr);
  c.wd = T(grp.weight_decay);
  c.momentum = T(mom);
  c.one_minus_dampening = T(1.0 - cfg.dampening);
  c.one_minus_momentum = T(1.0 - mom);
  c.beta2 = T(s.beta2);
  c.one_minus_beta2 = T(1.0 - s.beta2);
  c.eps = T(cfg.eps);
  c.first = t <= 1.0;
  c.use_momentum = cfg.has_momentum_buffer && mom != 0.0;
  c.decay = T(1.0 - lr * grp.weight_decay);
  if (cfg.algo == OptimAlgo::kAdam) {
    c.step_size = T(lr / (1.0 - pow(mom, t)));
    c.bc2_sqrt = T(sqrt(1.0 - pow(s.beta2, t)));
  } else {
    c.step_size = T(0);
    c.bc2_sqrt = T(1);
  }
  return c;
}

template <class T>
CYCLONE_HD void sgd_element(const OptimConfig& cfg, const OptimCoeffs<T>& c, T& p, T g, T& buf) {
  if (c.wd != T(0)) g = g + c.wd * p;
  if (c.use_momentum) {
    buf = c.first ? g : c.momentum * buf + c.one_minus_dampening * g;
    g = cfg.nesterov ? g + c.momentum * buf : buf;
  }
  p = p - c.lr * g;
}

template <class T>
CYCLONE_HD void adam_element(const OptimConfig& cfg, const OptimCoeffs<T>& c, T& p, T g, T& m, T& v,
                             T& v_max) {
  using std::sqrt;
  if (cfg.decoupled) {
    p = p * c.decay;
  } else if (c.wd != T(0)) {
    g = g + c.wd * p;
  }
  m = c.momentum * m + c.one_minus_momentum * g;
  v = c.beta2 * v + c.one_minus_beta2 * g * g;
  T v_hat = v;
  if (cfg.amsgrad) {
    v_max = v_max > v ? v_max : v;
    v_hat = v_max;
  }
  const T denom = sqrt(v_hat) / c.bc2_sqrt + c.eps;
  p = p - c.step_size * m / denom;
}

template <class T>
CYCLONE_HD void rmsprop_element(const OptimConfig& cfg, const OptimCoeffs<T>& c, T& p, T g, T& v,
                                T& buf, T& g_avg) {
  using std::sqrt;
  if (c.wd != T(0)) g = g + c.wd * p;
  // RMSprop's smoothing constant alpha travels in the beta2 slot.
  v = c.beta2 * v + c.one_minus_beta2 * g * g;
  T s;
  if (cfg.centered) {
    g_avg = c.beta2 * g_avg + c.one_minus_beta2 * g;
    s = sqrt(v - g_avg * g_avg) + c.eps;
  } else {
    s = sqrt(v) + c.eps;
  }
  if (c.use_momentum) {
    buf = c.momentum * buf + g / s;
    p = p - c.lr * buf;
  } else {
    p = p - c.lr * g / s;
  }
}

// One element of any algorithm; s0..s2 are the state slots (unused ones may alias a dummy).
template <OptimAlgo kAlgo, class T>
CYCLONE_HD void optim_element(const OptimConfig& cfg, const OptimCoeffs<T>& c, T& p, T g, T& s0,
                              T& s1, T& s2) {
  if constexpr (kAlgo == OptimAlgo::kSgd) {
    sgd_element(cfg, c, p, g, s0);
  } else if constexpr (kAlgo == OptimAlgo::kAdam) {
    adam_element(cfg, c, p, g, s0, s1, s2);
  } else {
    rmsprop_element(cfg, c, p, g, s0, s1, s2);
  }
}

// Calls f.template operator()<kAlgo>() for the runtime algorithm.
template <class F>
void dispatch_optim(OptimAlgo algo, F&& f) {
  switch (algo) {
    case OptimAlgo::kSgd:
      return f.template operator()<OptimAlgo::kSgd>();
    case OptimAlgo::kAdam:
      return f.template operator()<OptimAlgo::kAdam>();
    case OptimAlgo::kRmsprop:
      return f.template operator()<OptimAlgo::kRmsprop>();
  }
}

// Which slots an algorithm uses under `cfg` (bit i set: slot i holds a state tensor).
inline unsigned optim_slot_mask(const OptimConfig& cfg) {
  switch (cfg.algo) {
    case OptimAlgo::kSgd:
      return cfg.has_momentum_buffer ? 1u : 0u;
    case OptimAlgo::kAdam:
      return cfg.amsgrad ? 7u : 3u;
    case OptimAlgo::kRmsprop:
      return 1u | (cfg.has_momentum_buffer ? 2u : 0u) | (cfg.centered ? 4u : 0u);
  }
  return 0;
}

}  // namespace cyclone::kernels
