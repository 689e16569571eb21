// Shared by the optim tests: parameters with varying gradients, and double-precision reference
// optimizers written from the pseudo-code of the torch.optim docs (independently of
// kernels/optim_math.h: plain scalar loops, per-parameter step counts, no shared code).
#pragma once

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "cyclone/optim/nadam.h"

namespace cyclone::testing {

// Two parameters named like a network's ("conv.weight" [3, 5], "bn.bias" [7]) plus one big enough
// to span several parallel chunks, on `device`, values in [-1, 1).
inline NamedTensors make_params(DType dtype, Device device = Device::cpu(), bool big = false) {
  NamedTensors p;
  p.emplace_back("layer1.conv.weight", random_tensor({3, 5}, 11, dtype, device));
  p.emplace_back("layer1.bn.bias", random_tensor({7}, 12, dtype, device));
  p.emplace_back("fc.weight", random_tensor({big ? 70001 : 33}, 13, dtype, device));
  for (auto& [n, t] : p) t.set_requires_grad(true);
  return p;
}

// The gradient of parameter i at step s (1-based): fresh values each step.
inline std::vector<double> grad_values(size_t i, int64_t n, int s) {
  return random_values(n, 1000 + 97 * static_cast<uint64_t>(s) + i, -1.0, 1.0);
}

// Writes step s's gradients into the parameters' existing .grad (allocated on first use), as
// backward() accumulates into a zeroed gradient.
inline void set_grads(const NamedTensors& params, int s) {
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i].second;
    const auto g = grad_values(i, p.numel(), s);
    Tensor host =
        p.dtype() == DType::kFloat64
            ? Tensor::from_vector(g, p.shape(), Device::cpu())
            : Tensor::from_vector(std::vector<float>(g.begin(), g.end()), p.shape(), Device::cpu());
    if (!p.grad().defined()) p.set_grad(Tensor::empty(p.shape(), p.dtype(), p.device()));
    p.grad().copy_from(host);
  }
}

// A reference optimizer over host doubles: step(i, p, g, t) updates parameter i in place at its
// own step t (1-based). lr and momentum are read each call, so a test may change them per step.
struct RefOptimizer {
  virtual ~RefOptimizer() = default;
  virtual void step(size_t i, std::vector<double>& p, const std::vector<double>& g, int t) = 0;
  double lr = 0;
  double momentum = 0;
};

// torch.optim.SGD.
struct RefSgd : RefOptimizer {
  double dampening = 0, weight_decay = 0;
  bool nesterov = false;
  std::vector<std::vector<double>> buf{8};
  void step(size_t i, std::vector<double>& p, const std::vector<double>& g, int t) override {
    buf[i].resize(p.size());
    for (size_t k = 0; k < p.size(); ++k) {
      double d = g[k];
      if (weight_decay != 0) d += weight_decay * p[k];
      if (momentum != 0) {
        buf[i][k] = t > 1 ? momentum * buf[i][k] + (1 - dampening) * d : d;
        d = nesterov ? d + momentum * buf[i][k] : buf[i][k];
      }
      p[k] -= lr * d;
    }
  }
};

// torch.optim.Adam / AdamW (momentum = beta1).
struct RefAdam : RefOptimizer {
  double beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool amsgrad = false, adamw = false;
  std::vector<std::vector<double>> m{8}, v{8}, vmax{8};
  void step(size_t i, std::vector<double>& p, const std::vector<double>& g, int t) override {
    m[i].resize(p.size());
    v[i].resize(p.size());
    vmax[i].resize(p.size());
    const double beta1 = momentum;
    const double bc1 = 1 - std::pow(beta1, t), bc2 = 1 - std::pow(beta2, t);
    for (size_t k = 0; k < p.size(); ++k) {
      double d = g[k];
      if (adamw)
        p[k] *= 1 - lr * weight_decay;
      else
        d += weight_decay * p[k];
      m[i][k] = beta1 * m[i][k] + (1 - beta1) * d;
      v[i][k] = beta2 * v[i][k] + (1 - beta2) * d * d;
      double vh = v[i][k];
      if (amsgrad) {
        vmax[i][k] = std::max(vmax[i][k], v[i][k]);
        vh = vmax[i][k];
      }
      p[k] -= lr / bc1 * m[i][k] / (std::sqrt(vh) / std::sqrt(bc2) + eps);
    }
  }
};

// torch.optim.NAdam (momentum = beta1; decoupled = decoupled_weight_decay): the running product
// of mu is kept per parameter, over the beta1 of each step that parameter took.
struct RefNadam : RefOptimizer {
  double beta2 = 0.999, eps = 1e-8, weight_decay = 0, momentum_decay = 4e-3;
  bool decoupled = false;
  std::vector<std::vector<double>> m{8}, v{8};
  std::vector<double> mu_product = std::vector<double>(8, 1.0);
  void step(size_t i, std::vector<double>& p, const std::vector<double>& g, int t) override {
    m[i].resize(p.size());
    v[i].resize(p.size());
    const double beta1 = momentum;
    const double mu = beta1 * (1 - 0.5 * std::pow(0.96, t * momentum_decay));
    const double mu_next = beta1 * (1 - 0.5 * std::pow(0.96, (t + 1) * momentum_decay));
    mu_product[i] *= mu;
    const double bc2 = 1 - std::pow(beta2, t);
    const double a = lr * (1 - mu) / (1 - mu_product[i]);
    const double b = lr * mu_next / (1 - mu_product[i] * mu_next);
    for (size_t k = 0; k < p.size(); ++k) {
      double d = g[k];
      if (decoupled)
        p[k] *= 1 - lr * weight_decay;
      else
        d += weight_decay * p[k];
      m[i][k] = beta1 * m[i][k] + (1 - beta1) * d;
      v[i][k] = beta2 * v[i][k] + (1 - beta2) * d * d;
      const double denom = std::sqrt(v[i][k] / bc2) + eps;
      p[k] -= a * d / denom + b * m[i][k] / denom;
    }
  }
};

// torch.optim.RMSprop.
struct RefRmsprop : RefOptimizer {
  double alpha = 0.99, eps = 1e-8, weight_decay = 0;
  bool centered = false;
  std::vector<std::vector<double>> sq{8}, gavg{8}, buf{8};
  void step(size_t i, std::vector<double>& p, const std::vector<double>& g, int) override {
    sq[i].resize(p.size());
    gavg[i].resize(p.size());
    buf[i].resize(p.size());
    for (size_t k = 0; k < p.size(); ++k) {
      double d = g[k] + weight_decay * p[k];
      sq[i][k] = alpha * sq[i][k] + (1 - alpha) * d * d;
      double vt = sq[i][k];
      if (centered) {
        gavg[i][k] = alpha * gavg[i][k] + (1 - alpha) * d;
        vt -= gavg[i][k] * gavg[i][k];
      }
      const double s = std::sqrt(vt) + eps;
      if (momentum > 0) {
        buf[i][k] = momentum * buf[i][k] + d / s;
        p[k] -= lr * buf[i][k];
      } else {
        p[k] -= lr * d / s;
      }
    }
  }
};

}  // namespace cyclone::testing
