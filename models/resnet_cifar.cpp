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
  Generator gen(o.seed);
  const BlockOptions b = block_options(o, gen);
  conv1_ = register_module("conv1", std::make_shared<Conv2d>(o.in_channels, 16, 3, 1, 1, 1, false,
                                                             o.device, &gen, o.initializer));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(16, 1e-5, 0.1, true, o.device));
  act_ = register_module("act", std::make_shared<Activation>(o.activation));
  auto stage = [&](int64_t in, int64_t out, int stride) {
    std::vector<std::shared_ptr<Module>> blocks;
    for (int i = 0; i < n; ++i)
      blocks.push_back(
          std::make_shared<CifarBasicBlock>(i == 0 ? in : out, out, i == 0 ? stride : 1, b));
    return std::make_shared<Sequential>(std::move(blocks));
  };
  layer1_ = register_module("layer1", stage(16, 16, 1));
  layer2_ = register_module("layer2", stage(16, 32, 2));
  layer3_ = register_module("layer3", stage(32, 64, 2));
  pool_ = register_module("pool", std::make_shared<GlobalAvgPool2d>());
  linear_ = register_module("linear", make_linear(64, o.num_classes, o, gen));
}

Tensor CifarResNet::forward(const Tensor& x) {
  Tensor y = (*act_)((*bn1_)((*conv1_)(x)));
  y = (*layer3_)((*layer2_)((*layer1_)(y)));
  return (*linear_)((*pool_)(y));
}

}  // namespace cyclone
