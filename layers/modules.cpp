#include "cyclone/layers/modules.h"

#include <algorithm>
#include <cmath>

#include "cyclone/core/generator.h"
#include "cyclone/core/spelling.h"
#include "cyclone/kernels/random.h"
#include "cyclone/layers/activation_ops.h"
#include "cyclone/layers/layout.h"
#include "cyclone/layers/linear_ops.h"

namespace cyclone {

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, Device device, Generator* gen)
    : in_(in_features), out_(out_features) {
  CYCLONE_CHECK(in_features > 0 && out_features > 0, "Linear(", in_features, ", ", out_features,
                "): sizes must be positive");
  Generator& g = gen ? *gen : default_generator();
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
  Tensor w = Tensor::empty({out_features, in_features}, DType::kFloat32, device);
  kernels::uniform_(Context::of(w), w, -bound, bound, g);
  weight_ = register_parameter("weight", w);
  if (bias) {
    Tensor b = Tensor::empty({out_features}, DType::kFloat32, device);
    kernels::uniform_(Context::of(b), b, -bound, bound, g);
    bias_ = register_parameter("bias", b);
  }
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight_, bias_); }

std::string Linear::extra_repr() const {
  return std::to_string(in_) + ", " + std::to_string(out_) +
         (bias_.defined() ? "" : ", bias=false");
}

Sequential::Sequential(std::vector<std::shared_ptr<Module>> layers) {
  for (auto& l : layers) add(std::move(l));
}

Sequential& Sequential::add(std::shared_ptr<Module> layer) {
  register_module(std::to_string(layers_.size()), layer);
  layers_.push_back(std::move(layer));
  return *this;
}

Tensor Flatten::forward(const Tensor& x) {
  if (channels_last_active() && x.defined() && x.rank() == 4)
    return to_channels_first(x).flatten(1);
  return x.flatten(1);
}

Tensor Sequential::forward(const Tensor& x) { return forward_stages(x, 0, layers_.size()); }

std::vector<Stage> Sequential::stages() const {
  std::vector<Stage> out;
  for (size_t i = 0; i < layers_.size(); ++i)
    out.push_back({std::to_string(i), {std::to_string(i)}});
  return out;
}

Tensor Sequential::forward_stages(const Tensor& x, size_t begin, size_t end) {
  CYCLONE_CHECK(begin <= end && end <= layers_.size(), "Sequential: stages [", begin, ", ", end,
                ") of ", layers_.size());
  Tensor y = x;
  for (size_t i = begin; i < end; ++i) y = (*layers_[i])(y);
  return y;
}

Activation::Activation(std::string name) : name_(std::move(name)) {
  const auto names = activation_names();
  if (std::find(names.begin(), names.end(), name_) == names.end()) {
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    CYCLONE_THROW("unknown activation '", name_, "'", did_you_mean(name_, names),
                  " (known: ", known, ")");
  }
  fn_ = [n = name_](const Tensor& x) { return activation(n, x); };
}

}  // namespace cyclone
