// The CIFAR ResNets of He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR
// 2016, Sec. 4.2: ResNet-N, N = 6n + 2 (20, 32, 44, 56, 110, ...):
//   conv1 3x3 -> 16, bn1, act
//   layer1: n CifarBasicBlocks -> 16, stride 1
//   layer2: n CifarBasicBlocks -> 32, stride 2 (first block)
//   layer3: n CifarBasicBlocks -> 64, stride 2 (first block)
//   global average pool, linear -> num_classes
// The shortcuts that change shape use the paper's option A (zero-padded identity, no parameters;
// layers/residual.h), which is what gives the paper's parameter counts: for 10 classes
// ResNet-20 269,722 (0.27M), ResNet-32 464,154 (0.46M), ResNet-44 658,586 (0.66M), ResNet-56
// 853,018 (0.85M), ResNet-110 1,727,962 (1.7M). (Option B, 1x1 conv + BN projections, would give
// 272,474 and 855,770 for ResNet-20 and -56.)
//
// Names are those of akamaster/pytorch_resnet_cifar10 (resnet.py), the usual PyTorch reference
// for these networks, so its state dicts load unchanged: conv1, bn1, layer{1,2,3}.{i}.{conv1, bn1,
// conv2, bn2}, linear.
#pragma once

#include <memory>

#include "cyclone/layers/conv_modules.h"
#include "cyclone/layers/residual.h"
#include "cyclone/models/options.h"

namespace cyclone {

class CifarResNet : public Module {
 public:
  // depth: (depth - 2) % 6 == 0 and depth >= 8, else an Error naming it. The paper has no dropout,
  // so o.dropout > 0 is an Error rather than silently ignored.
  CifarResNet(int depth, const ModelOptions& o);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "CifarResNet"; }
  // stem, the three stages, head (pool and classifier); layer groups early / middle / head.
  std::vector<Stage> stages() const override;
  Tensor forward_stages(const Tensor& x, size_t begin, size_t end) override;
  LayerGroups layer_groups() const override;
  std::string extra_repr() const override { return "depth=" + std::to_string(depth_); }

 private:
  int depth_;
  std::shared_ptr<Conv2d> conv1_;
  std::shared_ptr<BatchNorm2d> bn1_;
  std::shared_ptr<Activation> act_;
  std::shared_ptr<Sequential> layer1_, layer2_, layer3_;
  std::shared_ptr<GlobalAvgPool2d> pool_;
  std::shared_ptr<Linear> linear_;
};

}  // namespace cyclone
