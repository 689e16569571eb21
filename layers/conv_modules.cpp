#include "cyclone/layers/conv_modules.h"

#include <cmath>
#include <sstream>

#include "cyclone/core/autograd.h"
#include "cyclone/core/context.h"
#include "cyclone/kernels/elementwise.h"
#include "cyclone/layers/dropout_ops.h"
#include "cyclone/layers/layout.h"
#include "cyclone/layers/norm_ops.h"
#include "cyclone/layers/reduce_ops.h"

namespace cyclone {

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int kernel_size, int stride, int padding,
               int dilation, bool bias, Device device, Generator* gen, const std::string& init)
    : in_(in_channels),
      out_(out_channels),
      kernel_(kernel_size),
      params_(Conv2dParams::square(stride, padding, dilation)) {
  CYCLONE_CHECK(in_channels > 0 && out_channels > 0, "Conv2d(", in_channels, ", ", out_channels,
                "): channel counts must be positive");
  CYCLONE_CHECK(kernel_size > 0 && stride > 0 && padding >= 0 && dilation > 0, "Conv2d(",
                in_channels, ", ", out_channels, "): bad kernel_size=", kernel_size,
                " stride=", stride, " padding=", padding, " dilation=", dilation);
  Generator& g = gen ? *gen : default_generator();
  Tensor w =
      Tensor::empty({out_channels, in_channels, kernel_size, kernel_size}, DType::kFloat32, device);
  init_tensor(init, w, g);
  weight_ = register_parameter("weight", w);
  if (bias)
    bias_ = register_parameter("bias", Tensor::zeros({out_channels}, DType::kFloat32, device));
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d_in_layout(x, weight_, bias_, params_); }

std::string Conv2d::extra_repr() const {
  std::ostringstream os;
  os << in_ << ", " << out_ << ", kernel_size=" << kernel_ << ", stride=" << params_.stride_h;
  if (params_.pad_h) os << ", padding=" << params_.pad_h;
  if (params_.dil_h != 1) os << ", dilation=" << params_.dil_h;
  if (!bias_.defined()) os << ", bias=false";
  return os.str();
}

BatchNorm2d::BatchNorm2d(int64_t num_features, double eps, double momentum, bool affine,
                         Device device)
    : num_features_(num_features), eps_(eps), momentum_(momentum) {
  CYCLONE_CHECK(num_features > 0, "BatchNorm2d(", num_features, "): num_features must be positive");
  CYCLONE_CHECK(eps > 0 && std::isfinite(eps), "BatchNorm2d(", num_features,
                "): eps must be positive, got ", eps);
  CYCLONE_CHECK(momentum >= 0 && momentum <= 1, "BatchNorm2d(", num_features,
                "): momentum must be in [0, 1], got ", momentum);
  Context& ctx = Context::current(device);
  if (affine) {
    Tensor w = Tensor::empty({num_features}, DType::kFloat32, device);
    kernels::fill(ctx, w, 1.0);
    weight_ = register_parameter("weight", w);
    bias_ = register_parameter("bias", Tensor::zeros({num_features}, DType::kFloat32, device));
  }
  running_mean_ =
      register_buffer("running_mean", Tensor::zeros({num_features}, DType::kFloat32, device));
  Tensor var = Tensor::empty({num_features}, DType::kFloat32, device);
  kernels::fill(ctx, var, 1.0);
  running_var_ = register_buffer("running_var", var);
  num_batches_tracked_ =
      register_buffer("num_batches_tracked", Tensor::zeros(Shape(), DType::kInt32, device));
}

Tensor BatchNorm2d::forward(const Tensor& x) { return run(x, false); }

Tensor BatchNorm2d::forward_relu(const Tensor& x) {
  CYCLONE_CHECK(!synchronized(), "BatchNorm2d(", num_features_,
                "): forward_relu is not available for a synchronized batch norm");
  return run(x, true);
}

Tensor BatchNorm2d::run(const Tensor& x, bool relu) {
  const bool nhwc = channels_last_active();
  CYCLONE_CHECK(x.defined() && x.rank() == 4, "BatchNorm2d(", num_features_, "): expects ",
                nhwc ? "[N, H, W, C] (channels last)" : "[N, C, H, W]", ", got ",
                x.defined() ? x.shape().str() : "undefined");
  const int axis = channel_axis(x);
  CYCLONE_CHECK(x.dim(axis) == num_features_, "BatchNorm2d(", num_features_, "): input ", x.shape(),
                " has ", x.dim(axis), " channels", nhwc ? " (channels last)" : "");
  // Channels last: the [N H W, C] view has the same per-channel batches.
  const Tensor v = nhwc ? x.reshape({-1, num_features_}) : x;
  const bool training = is_training();
  Tensor y;
  if (training && replica_sum_)
    y = sync_batch_norm(v, running_mean_, running_var_, weight_, bias_, momentum_, eps_,
                        replica_sum_);
  else if (relu)
    y = batch_norm_relu(v, running_mean_, running_var_, weight_, bias_, training, momentum_, eps_);
  else
    y = batch_norm(v, running_mean_, running_var_, weight_, bias_, training, momentum_, eps_);
  if (nhwc) y = y.reshape(x.shape());
  if (training) {
    // The count lives on the device: one exact int32 increment (a launch, inside a step's graph).
    autograd::NoGradGuard no_grad;
    kernels::increment(Context::of(num_batches_tracked_), num_batches_tracked_);
  }
  return y;
}

namespace {
thread_local int t_bn_relu_fusion = -1;  // -1: the device's default; 0 off; 1 on
}  // namespace

bool bn_relu_fusion_enabled(Device device) {
  return t_bn_relu_fusion < 0 ? device.is_cuda() : t_bn_relu_fusion == 1;
}

BnReluFusionScope::BnReluFusionScope(bool on) : previous_(t_bn_relu_fusion) {
  t_bn_relu_fusion = on ? 1 : 0;
}

BnReluFusionScope::~BnReluFusionScope() { t_bn_relu_fusion = previous_; }

Tensor batch_norm_act(BatchNorm2d& bn, Activation& act, const Tensor& x) {
  // A module with its own compute dtype or layout opens its scopes in operator(): not fused.
  const bool own_scopes = bn.compute_dtype() != DType::kFloat32 || bn.channels_last() ||
                          act.compute_dtype() != DType::kFloat32 || act.channels_last();
  if (act.name() != "relu" || bn.synchronized() || own_scopes || !x.defined() ||
      !bn_relu_fusion_enabled(x.device()))
    return act(bn(x));
  Tensor y = bn.forward_relu(x);
  bn.record_call(y);
  act.record_call(y);
  return y;
}

std::string BatchNorm2d::extra_repr() const {
  std::ostringstream os;
  os << num_features_ << ", eps=" << eps_ << ", momentum=" << momentum_;
  if (!weight_.defined()) os << ", affine=false";
  return os.str();
}

namespace {

Pool2dParams pool_params(const char* type, int kernel, int stride, int padding) {
  CYCLONE_CHECK(kernel > 0 && stride >= 0 && padding >= 0 && 2 * padding <= kernel, type,
                ": bad kernel_size=", kernel, " stride=", stride, " padding=", padding,
                " (padding at most half the kernel, as PyTorch requires)");
  return Pool2dParams::square(kernel, stride, padding);
}

std::string pool_repr(const Pool2dParams& p) {
  std::ostringstream os;
  os << "kernel_size=" << p.kh << ", stride=" << p.stride_h;
  if (p.pad_h) os << ", padding=" << p.pad_h;
  return os.str();
}

// Channels last: the pooling kernels are NCHW, so the map goes there and back (two copies; the
// models that pool, LeNet-5, have small maps).
template <class Pool>
Tensor pool_in_layout(const Tensor& x, Pool&& pool) {
  if (!channels_last_active() || x.rank() != 4) return pool(x);
  return to_channels_last(pool(to_channels_first(x)));
}

}  // namespace

MaxPool2d::MaxPool2d(int kernel_size, int stride, int padding)
    : params_(pool_params("MaxPool2d", kernel_size, stride, padding)) {}

Tensor MaxPool2d::forward(const Tensor& x) {
  return pool_in_layout(x, [&](const Tensor& t) { return max_pool2d(t, params_); });
}

std::string MaxPool2d::extra_repr() const { return pool_repr(params_); }

AvgPool2d::AvgPool2d(int kernel_size, int stride, int padding)
    : params_(pool_params("AvgPool2d", kernel_size, stride, padding)) {}

Tensor AvgPool2d::forward(const Tensor& x) {
  return pool_in_layout(x, [&](const Tensor& t) { return avg_pool2d(t, params_); });
}

std::string AvgPool2d::extra_repr() const { return pool_repr(params_); }

Tensor GlobalAvgPool2d::forward(const Tensor& x) {
  if (!channels_last_active() || !x.defined() || x.rank() != 4) return global_avg_pool(x);
  // [N, H, W, C]: the mean over the middle axis of the [N, H W, C] view.
  return mean(x.reshape({x.dim(0), x.dim(1) * x.dim(2), x.dim(3)}), 1);
}

Dropout::Dropout(double p, std::shared_ptr<Generator> gen) : p_(p), gen_(std::move(gen)) {
  CYCLONE_CHECK(std::isfinite(p) && p >= 0.0 && p < 1.0, "Dropout: p must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& x) {
  return dropout(x, p_, is_training(), gen_ ? *gen_ : default_generator());
}

std::string Dropout::extra_repr() const {
  std::ostringstream os;
  os << "p=" << p_;
  return os.str();
}

}  // namespace cyclone
