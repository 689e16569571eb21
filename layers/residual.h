// Residual blocks of the CIFAR networks in models/: the pre-activation basic block of Wide
// ResNets and the post-activation basic block of the CIFAR ResNets.
//
// Sub-module names follow the PyTorch implementations whose checkpoints people actually have, so
// those state dicts load with no renaming:
//   WideBasicBlock  - xternalz/WideResNet-pytorch (wideresnet.py, BasicBlock): bn1, conv1, bn2,
//                     conv2, convShortcut (only when the shape changes);
//   CifarBasicBlock - akamaster/pytorch_resnet_cifar10 (resnet.py, BasicBlock, option A): conv1,
//                     bn1, conv2, bn2 (the option-A shortcut has no parameters).
// Activations and dropout are registered as modules too (act1, act2, dropout) so that summary()
// lists them and train()/eval() reaches the dropout; they hold no tensors, so they do not appear
// in state dicts. Each act(bn(...)) pair runs through batch_norm_act (layers/conv_modules.h): one
// fused kernel each way when the activation is ReLU (by default on CUDA).
#pragma once

#include <memory>
#include <string>

#include "cyclone/layers/conv_modules.h"
#include "cyclone/layers/modules.h"

namespace cyclone {

// What the blocks share: where to build, how to initialise the convolutions, which activation.
struct BlockOptions {
  std::string activation = "relu";
  std::string initializer = kDefaultInit;
  Device device = default_device();
  Generator* gen = nullptr;                     // weight init (default generator when null)
  std::shared_ptr<Generator> dropout_gen = {};  // dropout masks (default generator when null)
};

// Wide-ResNet basic block, pre-activation (Zagoruyko & Komodakis, "Wide Residual Networks", BMVC
// 2016, Fig. 1(d) "basic-wide" with dropout between the convolutions; the BN-ReLU-conv order of
// He et al., "Identity Mappings in Deep Residual Networks", ECCV 2016):
//   o = act(bn1(x))
//   y = conv2(dropout(act(bn2(conv1(o)))))        conv1 3x3 stride s, conv2 3x3 stride 1
//   out = y + (in == out && s == 1 ? x : convShortcut(o))     convShortcut 1x1 stride s
// The projection shortcut reads the pre-activated o, not x, as the reference implementation does
// (so the first block of each group shares bn1 between its two branches). No conv has a bias: a
// batch norm follows each one on every path.
class WideBasicBlock : public Module {
 public:
  WideBasicBlock(int64_t in_channels, int64_t out_channels, int stride, double dropout,
                 const BlockOptions& o);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "WideBasicBlock"; }
  std::string extra_repr() const override;
  bool has_projection() const { return shortcut_ != nullptr; }

 private:
  int64_t in_, out_;
  int stride_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_;
  std::shared_ptr<Conv2d> conv1_, conv2_, shortcut_;
  std::shared_ptr<Activation> act1_, act2_;
  std::shared_ptr<Dropout> dropout_;
};

// CIFAR ResNet basic block (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016,
// Sec. 4.2), post-activation:
//   out = act(bn2(conv2(act(bn1(conv1(x))))) + shortcut(x))
// conv1 3x3 stride s, conv2 3x3 stride 1, no biases. When the shape changes the shortcut is the
// paper's option A: the identity subsampled by s and zero-padded in channels, parameter-free, which
// gives the paper's counts (ResNet-20 0.27M, ResNet-56 0.85M; option B's 1x1 projections would add
// 2,752 parameters to each). The padding puts the input's channels in the middle, (out - in) / 2
// zero channels on each side, as akamaster's F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, out/4, out/4))
// does, so that its weights load and compute the same function.
//
// The subsample-and-pad is a 1x1 convolution with a constant 0/1 weight [out, in, 1, 1] (not a
// parameter or buffer): it runs on the shipped conv kernels on every device with an exact result
// (each output is x * 1 or 0), and its backward routes the gradient back to the kept positions.
class CifarBasicBlock : public Module {
 public:
  CifarBasicBlock(int64_t in_channels, int64_t out_channels, int stride, const BlockOptions& o);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "CifarBasicBlock"; }
  std::string extra_repr() const override;

 private:
  int64_t in_, out_;
  int stride_;
  std::shared_ptr<Conv2d> conv1_, conv2_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_;
  std::shared_ptr<Activation> act1_, act2_;
  Tensor pad_weight_;  // option A's constant embedding; undefined for the identity shortcut
};

}  // namespace cyclone
