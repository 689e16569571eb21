// Wide Residual Networks (Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016), WRN-D-K:
//   conv1 3x3 -> 16
//   block1: n WideBasicBlocks -> 16K, stride 1       n = (D - 4) / 6
//   block2: n WideBasicBlocks -> 32K, stride 2 (first block)
//   block3: n WideBasicBlocks -> 64K, stride 2 (first block)
//   bn1, act, global average pool, fc -> num_classes
// with optional dropout between each block's convolutions (the paper uses 0.3). The depth is
// the paper's D = 6n + 4. WRN-28-10 for 10 classes has 36,479,194 parameters (the paper's
// "36.5M").
//
// Names are those of xternalz/WideResNet-pytorch (wideresnet.py), the implementation most WRN
// checkpoints come from, so its state dicts load unchanged:
//   conv1.weight
//   block{1,2,3}.layer.{i}.{bn1,conv1,bn2,conv2,convShortcut}.*   (layers/residual.h)
//   bn1.{weight,bias,running_mean,running_var,num_batches_tracked}
//   fc.{weight,bias}
// The reference ends with F.avg_pool2d(out, 8) on 32x32 inputs; the global average pool here is
// the same there and also accepts other input sizes.
#pragma once

#include <memory>

#include "cyclone/layers/conv_modules.h"
#include "cyclone/layers/residual.h"
#include "cyclone/models/options.h"

namespace cyclone {

class WideResNet : public Module {
 public:
  // depth: (depth - 4) % 6 == 0 and depth >= 10; widen_factor >= 1. Otherwise an Error naming it.
  WideResNet(int depth, int widen_factor, const ModelOptions& o);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "WideResNet"; }
  // stem, the three stages, head (pool and classifier); layer groups early / middle / head.
  std::vector<Stage> stages() const override;
  Tensor forward_stages(const Tensor& x, size_t begin, size_t end) override;
  LayerGroups layer_groups() const override;
  std::string extra_repr() const override;

 private:
  int depth_, widen_;
  std::shared_ptr<Conv2d> conv1_;
  std::shared_ptr<Module> block1_, block2_, block3_;
  std::shared_ptr<BatchNorm2d> bn1_;
  std::shared_ptr<Activation> act_;
  std::shared_ptr<GlobalAvgPool2d> pool_;
  std::shared_ptr<Linear> fc_;
};

}  // namespace cyclone
