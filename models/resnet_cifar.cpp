#include "cyclone/models/resnet_cifar.h"

#include <string>
#include <vector>

namespace cyclone {

CifarResNet::CifarResNet(int depth, const ModelOptions& o) : depth_(depth) {
  const std::string name = "resnet" + std::to_string(depth);
  CYCLONE_CHECK(depth >= 8 && (depth - 2) % 6 == 0, name, ": depth ", depth,
                " is not 6n + 2 with n >= 1 (valid depths: 8, 14, 20, 32, 44, 56, 110, ...)");
  // The paper's deepest is ResNet-1202; the cap stops a typo from building an absurd network.
  CYCLONE_CHECK(depth <= 2000, name, ": depth ", depth, " is beyond the supported 2000");
  check_model_options(name.c_str(), o);
  CYCLONE_CHECK(o.dropout == 0, name, ": the CIFAR ResNets have no dropout (dropout=", o.dropout,
                " given); use a wrn-D-K model for dropout");
  const int n = (depth - 2) / 6;
  CYCLONE_CHECK(o.filters.empty() || o.filters.size() == 3, name,
                ": num_filters_per_block needs 3 values (the widths of its 3 stages), got ",
                o.filters.size());
  const int64_t w1 = o.filters.empty() ? 16 : o.filters[0];
  const int64_t w2 = o.filters.empty() ? 32 : o.filters[1];
  const int64_t w3 = o.filters.empty() ? 64 : o.filters[2];
  Generator gen(o.seed);
  const BlockOptions b = block_options(o, gen);
  conv1_ = register_module("conv1", std::make_shared<Conv2d>(o.in_channels, w1, 3, 1, 1, 1, false,
                                                             o.device, &gen, o.initializer));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(w1, 1e-5, 0.1, true, o.device));
  act_ = register_module("act", std::make_shared<Activation>(o.activation));
  auto stage = [&](int64_t in, int64_t out, int stride) {
    std::vector<std::shared_ptr<Module>> blocks;
    for (int i = 0; i < n; ++i)
      blocks.push_back(
          std::make_shared<CifarBasicBlock>(i == 0 ? in : out, out, i == 0 ? stride : 1, b));
    return std::make_shared<Sequential>(std::move(blocks));
  };
  layer1_ = register_module("layer1", stage(w1, w1, 1));
  layer2_ = register_module("layer2", stage(w1, w2, 2));
  layer3_ = register_module("layer3", stage(w2, w3, 2));
  pool_ = register_module("pool", std::make_shared<GlobalAvgPool2d>());
  linear_ = register_module("linear", make_linear(w3, o.num_classes, o, gen));
}

Tensor CifarResNet::forward(const Tensor& x) { return forward_stages(x, 0, 5); }

std::vector<Stage> CifarResNet::stages() const {
  return {{"stem", {"conv1", "bn1", "act"}},
          {"layer1", {"layer1"}},
          {"layer2", {"layer2"}},
          {"layer3", {"layer3"}},
          {"head", {"pool", "linear"}}};
}

Tensor CifarResNet::forward_stages(const Tensor& x, size_t begin, size_t end) {
  CYCLONE_CHECK(begin <= end && end <= 5, "CifarResNet: stages [", begin, ", ", end, ") of 5");
  Tensor y = x;
  for (size_t i = begin; i < end; ++i) {
    switch (i) {
      case 0:
        y = batch_norm_act(*bn1_, *act_, (*conv1_)(y));
        break;
      case 1:
        y = (*layer1_)(y);
        break;
      case 2:
        y = (*layer2_)(y);
        break;
      case 3:
        y = (*layer3_)(y);
        break;
      default:
        y = (*linear_)((*pool_)(y));
    }
  }
  return y;
}

LayerGroups CifarResNet::layer_groups() const {
  return {{"early", {"conv1.", "bn1.", "layer1."}},
          {"middle", {"layer2.", "layer3."}},
          {"head", {"linear."}}};
}

}  // namespace cyclone
