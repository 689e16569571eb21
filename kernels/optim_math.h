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
//   Adam:  g <- g + wd p        AdamW: p <- p (1 - lr wd)  (decoupled decay, Loshchilov & Hutter)
//   m <- beta1 m + (1 - beta1) g
//   v <- beta2 v + (1 - beta2) g^2
//   amsgrad: v_max <- max(v_max, v), and v_max replaces v below
//   p <- p - (lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//   cost: ~12 flops + 1 sqrt + 1 div; 7 element reads/writes (9 with amsgrad).
//
// RMSprop (torch.optim.RMSprop; alpha, eps, centered, momentum mu):
//   g <- g + wd p
//   v <- alpha v + (1 - alpha) g^2
//   centered: a <- alpha a + (1 - alpha) g,  s = sqrt(v - a^2) + eps;  else s = sqrt(v) + eps
//   mu > 0: b <- mu b + g / s,  p <- p - lr b;  else p <- p - lr g / s
//   cost: ~8 flops + 1 sqrt + 1 div; 5 element reads/writes (+2 centered, +2 momentum).
//
// NAdam (torch.optim.NAdam, its _single_tensor_nadam; Dozat 2016, "Incorporating Nesterov
// Momentum into Adam"; beta1, beta2, eps, momentum_decay psi, decoupled_weight_decay):
//   NAdam: g <- g + wd p          decoupled (NAdamW): p <- p (1 - lr wd)
//   mu_t = beta1 (1 - 0.5 * 0.96^(t psi));  mu_{t+1} = beta1 (1 - 0.5 * 0.96^((t+1) psi))
//   P_t = P_{t-1} mu_t                      (P_0 = 1; PyTorch's state "mu_product")
//   m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2
//   d = sqrt(v / (1 - beta2^t)) + eps
//   p <- p - (lr (1 - mu_t) / (1 - P_t)) g / d
//   p <- p - (lr mu_{t+1} / (1 - P_t mu_{t+1})) m / d
//   cost: ~14 flops + 1 sqrt + 3 div; 7 element reads/writes (as Adam).
// beta1 is the step's momentum (set_momentum), so P_t multiplies the beta1 of each step the
// parameter took, as PyTorch multiplies the group's current betas[0]. P differs between
// parameters (own step count, a group's own beta1), so it is per-tensor state rather than a step
// scalar: a float64 pair on the tensor's device {P at even t, P at odd t}. Step t reads entry
// (t - 1) & 1 and writes entry t & 1, so every block of the fused kernel reads P_{t-1} while one
// of them stores P_t, in one launch, without a race, and a replayed CUDA graph advances it. Where
// PyTorch keeps mu_product in its default dtype (float32 unless changed), it is float64 here.
//
#pragma once

#include <cmath>
#include <cstdint>

#include "cyclone/core/hd.h"

namespace cyclone::kernels {

enum class OptimAlgo : int32_t { kSgd = 0, kAdam = 1, kRmsprop = 2, kNadam = 3 };

inline constexpr int kOptimMaxSlots = 3;

// Options fixed for an optimizer's life: launch arguments, not part of the device buffer.
struct OptimConfig {
  OptimAlgo algo = OptimAlgo::kSgd;
  double dampening = 0;          // SGD
  bool nesterov = false;         // SGD
  double eps = 1e-8;             // Adam, RMSprop, NAdam
  bool amsgrad = false;          // Adam
  bool decoupled = false;        // AdamW, NAdam: decoupled weight decay
  double momentum_decay = 4e-3;  // NAdam (psi)
  bool centered = false;         // RMSprop
  // SGD / RMSprop: a momentum buffer exists (the optimizer was built with momentum > 0).
  bool has_momentum_buffer = false;
};

// The step's scalars: the layout of the device buffer the fused kernel reads (64 bytes).
struct OptimScalars {
  double lr = 0;                   // base learning rate, before group multipliers
  double momentum = 0;             // SGD / RMSprop momentum; Adam / NAdam beta1
  double beta2 = 0;                // Adam / NAdam beta2; RMSprop alpha
  double step = 0;                 // t: steps taken by the optimizer, this one included
  double extra[4] = {0, 0, 0, 0};  // reserved for later algorithms
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
  T bc2, step_size_next;  // NAdam: 1 - beta2^t; the step size of m (step_size is g's)
  bool first, use_momentum;
  double mu_product;  // NAdam: P_t, to store at index mu_index of the tensor's pair
  int32_t mu_index;
};

// Whether the algorithm keeps NAdam's per-tensor mu product pair (see the header comment).
inline bool optim_has_mu_product(const OptimConfig& cfg) { return cfg.algo == OptimAlgo::kNadam; }

// Coefficients of one tensor: `step_lag` is how many optimizer steps this tensor missed (steps in
// which it had no gradient), so its own t is scalars.step - step_lag, as PyTorch's per-parameter
// state['step']. `mu_product` is the tensor's pair for NAdam (read here; the caller stores
// c.mu_product with optim_store_mu_product once per tensor), unused (may be null) otherwise.
template <class T>
CYCLONE_HD OptimCoeffs<T> optim_coeffs(const OptimConfig& cfg, const OptimScalars& s,
                                       const OptimGroupParams& grp, double step_lag,
                                       const double* mu_product) {
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
  c.bc2 = T(1);
  c.step_size_next = T(0);
  c.mu_product = 1.0;
  c.mu_index = 0;
  if (cfg.algo == OptimAlgo::kAdam) {
    c.step_size = T(lr / (1.0 - pow(mom, t)));
    c.bc2_sqrt = T(sqrt(1.0 - pow(s.beta2, t)));
  } else if (cfg.algo == OptimAlgo::kNadam) {
    const double mu = mom * (1.0 - 0.5 * pow(0.96, t * cfg.momentum_decay));
    const double mu_next = mom * (1.0 - 0.5 * pow(0.96, (t + 1.0) * cfg.momentum_decay));
    const auto ti = static_cast<int64_t>(t);
    c.mu_product = mu_product[(ti - 1) & 1] * mu;
    c.mu_index = static_cast<int32_t>(ti & 1);
    c.step_size = T(lr * (1.0 - mu) / (1.0 - c.mu_product));
    c.step_size_next = T(lr * mu_next / (1.0 - c.mu_product * mu_next));
    c.bc2 = T(1.0 - pow(s.beta2, t));
    c.bc2_sqrt = T(1);
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

// What Adam(W) and NAdam share: the weight decay (decoupled or L2) and the two moment updates.
// Returns the gradient with L2 decay added.
template <class T>
CYCLONE_HD T adam_moments(const OptimConfig& cfg, const OptimCoeffs<T>& c, T& p, T g, T& m, T& v) {
  if (cfg.decoupled) {
    p = p * c.decay;
  } else if (c.wd != T(0)) {
    g = g + c.wd * p;
  }
  m = c.momentum * m + c.one_minus_momentum * g;
  v = c.beta2 * v + c.one_minus_beta2 * g * g;
  return g;
}

template <class T>
CYCLONE_HD void adam_element(const OptimConfig& cfg, const OptimCoeffs<T>& c, T& p, T g, T& m, T& v,
                             T& v_max) {
  using std::sqrt;
  adam_moments(cfg, c, p, g, m, v);
  T v_hat = v;
  if (cfg.amsgrad) {
    v_max = v_max > v ? v_max : v;
    v_hat = v_max;
  }
  const T denom = sqrt(v_hat) / c.bc2_sqrt + c.eps;
  p = p - c.step_size * m / denom;
}

// Stores P_t (NAdam) in the tensor's pair; call once per tensor and step, after optim_coeffs.
template <class T>
CYCLONE_HD void optim_store_mu_product(const OptimConfig& cfg, const OptimCoeffs<T>& c,
                                       double* mu_product) {
  if (cfg.algo == OptimAlgo::kNadam) mu_product[c.mu_index] = c.mu_product;
}

template <class T>
CYCLONE_HD void nadam_element(const OptimConfig& cfg, const OptimCoeffs<T>& c, T& p, T g, T& m,
                              T& v) {
  using std::sqrt;
  g = adam_moments(cfg, c, p, g, m, v);
  const T denom = sqrt(v / c.bc2) + c.eps;
  p = p - c.step_size * (g / denom);
  p = p - c.step_size_next * (m / denom);
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
  } else if constexpr (kAlgo == OptimAlgo::kNadam) {
    nadam_element(cfg, c, p, g, s0, s1);
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
    case OptimAlgo::kNadam:
      return f.template operator()<OptimAlgo::kNadam>();
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
    case OptimAlgo::kNadam:
      return 3u;
  }
  return 0;
}

}  // namespace cyclone::kernels
