// The image modules: Conv2d, BatchNorm2d, MaxPool2d, AvgPool2d, GlobalAvgPool2d and Dropout, on
// the functional ops of layers/conv_ops.h, norm_ops.h and dropout_ops.h.
//
// Parameter and buffer names are PyTorch's ("weight", "bias", "running_mean", "running_var",
// "num_batches_tracked") with PyTorch's layouts (conv weight [out, in, kh, kw]), so a state dict
// written by PyTorch for the same architecture loads (layers/module.h). Inside a channels-last
// scope (layers/layout.h) they take and return [N, H, W, C] activations; the parameters keep
// PyTorch's layouts.
#pragma once

#include <memory>
#include <string>

#include "cyclone/core/generator.h"
#include "cyclone/layers/conv_ops.h"
#include "cyclone/layers/init.h"
#include "cyclone/layers/module.h"
#include "cyclone/layers/modules.h"
#include "cyclone/layers/norm_ops.h"

namespace cyclone {

// torch.nn.Conv2d with groups = 1 and square kernel / stride / padding / dilation.
// The weight is initialised by the initializer `init` (layers/init.h; default he_normal, the
// best_lr --kernel_initializer default) from `gen` (the default generator when null); the bias,
// when present, starts at zero (Keras' default bias_initializer).
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int kernel_size, int stride = 1,
         int padding = 0, int dilation = 1, bool bias = true, Device device = default_device(),
         Generator* gen = nullptr, const std::string& init = kDefaultInit);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Conv2d"; }
  std::string extra_repr() const override;
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }

 private:
  int64_t in_, out_;
  int kernel_;
  Conv2dParams params_;
  Tensor weight_, bias_;
};

// torch.nn.BatchNorm2d (Ioffe & Szegedy 2015) with track_running_stats = True.
// Training mode normalises with the batch statistics and updates running_mean / running_var
// (running = (1 - momentum) running + momentum batch); eval mode uses the running statistics, so
// an eval output does not depend on the rest of the batch. weight starts at 1, bias at 0.
//
// num_batches_tracked counts training-mode forwards, as PyTorch's does, so that PyTorch state
// dicts have a tensor to load into. PyTorch stores it as int64; Cyclone has no int64 dtype, so it
// is an int32 scalar (shape []): PyTorch's load_state_dict converts it back on copy. It does not
// enter the math (momentum is never None here). Its increment runs on the device (cast, add,
// cast) so a training step never reads back to the host and stays capturable as a CUDA graph.
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1,
                       bool affine = true, Device device = default_device());
  Tensor forward(const Tensor& x) override;
  // relu(forward(x)) in one fused kernel each way (layers/norm_ops.h batch_norm_relu); not for a
  // synchronized batch norm.
  Tensor forward_relu(const Tensor& x);
  std::string type_name() const override { return "BatchNorm2d"; }
  std::string extra_repr() const override;
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  const Tensor& running_mean() const { return running_mean_; }
  const Tensor& running_var() const { return running_var_; }
  const Tensor& num_batches_tracked() const { return num_batches_tracked_; }
  // Synchronized batch norm (torch.nn.SyncBatchNorm): with a replica sum set, training-mode
  // forwards use the statistics of every replica's batch (layers/norm_ops.h sync_batch_norm).
  // An empty function turns it off.
  void set_replica_sum(ReplicaSum sum) { replica_sum_ = std::move(sum); }
  bool synchronized() const { return replica_sum_ != nullptr; }

 private:
  Tensor run(const Tensor& x, bool relu);

  ReplicaSum replica_sum_;
  int64_t num_features_;
  double eps_, momentum_;
  Tensor weight_, bias_, running_mean_, running_var_, num_batches_tracked_;
};

// act(bn(x)), the BN-ReLU pair of the residual networks: when act is ReLU, bn is not synchronized
// and fusion is on for x's device, bn.forward_relu(x) (the same values and gradients, one
// activation-sized tensor less kept for the backward and one pass over it less each way);
// otherwise the two modules in turn. summary() lists both modules either way.
Tensor batch_norm_act(BatchNorm2d& bn, Activation& act, const Tensor& x);

// Whether batch_norm_act fuses on `device` on this thread. By default on CUDA only: there batch
// norm is memory bound and the fusion moves 8 activation-sized streams instead of 13; the CPU
// kernels are bound by their scalar double arithmetic, which the fusion adds to (measured slower
// than the pair there: benchmarks/README.md, BM_batchnorm_relu_*). A BnReluFusionScope overrides.
bool bn_relu_fusion_enabled(Device device);
// Turns the fusion on or off on every device, on this thread, for the scope's lifetime: A/B
// measurements and tests.
class BnReluFusionScope {
 public:
  explicit BnReluFusionScope(bool on);
  ~BnReluFusionScope();
  BnReluFusionScope(const BnReluFusionScope&) = delete;
  BnReluFusionScope& operator=(const BnReluFusionScope&) = delete;

 private:
  int previous_;
};

// torch.nn.MaxPool2d (ceil_mode false): a square window; stride 0 means the kernel size.
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(int kernel_size, int stride = 0, int padding = 0);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "MaxPool2d"; }
  std::string extra_repr() const override;

 private:
  Pool2dParams params_;
};

// torch.nn.AvgPool2d (count_include_pad true): a square window; stride 0 means the kernel size.
class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(int kernel_size, int stride = 0, int padding = 0);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "AvgPool2d"; }
  std::string extra_repr() const override;

 private:
  Pool2dParams params_;
};

// [N, C, H, W] -> [N, C]: the mean over H and W. This is nn.AdaptiveAvgPool2d(1) followed by
// nn.Flatten() (the pair every CIFAR classifier head uses), so no Flatten is needed after it.
class GlobalAvgPool2d : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "GlobalAvgPool2d"; }
};

// torch.nn.Dropout: in training mode zeroes each element with probability p and scales the rest
// by 1 / (1 - p) (layers/dropout_ops.h); the identity in eval mode or when p = 0. The masks come
// from `gen` when given (a model seeds one so that a run is reproducible from its seed), else
// from the process default generator.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, std::shared_ptr<Generator> gen = nullptr);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;
  double p() const { return p_; }

 protected:
  std::shared_ptr<Generator> own_generator() const override { return gen_; }

 private:
  double p_;
  std::shared_ptr<Generator> gen_;
};

}  // namespace cyclone
