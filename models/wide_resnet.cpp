#include "cyclone/models/wide_resnet.h"

#include <string>
#include <vector>

namespace cyclone {

namespace {

// The reference's NetworkBlock: a Sequential called "layer" (hence "block1.layer.0.bn1.weight").
class NetworkBlock : public Module {
 public:
  NetworkBlock(int n, int64_t in, int64_t out, int stride, double dropout, const BlockOptions& b) {
    std::vector<std::shared_ptr<Module>> blocks;
    for (int i = 0; i < n; ++i)
      blocks.push_back(std::make_shared<WideBasicBlock>(i == 0 ? in : out, out, i == 0 ? stride : 1,
                                                        dropout, b));
    layer_ = register_module("layer", std::make_shared<Sequential>(std::move(blocks)));
  }
  Tensor forward(const Tensor& x) override { return (*layer_)(x); }
  std::string type_name() const override { return "NetworkBlock"; }

 private:
  std::shared_ptr<Sequential> layer_;
};

}  // namespace

WideResNet::WideResNet(int depth, int widen_factor, const ModelOptions& o)
    : depth_(depth), widen_(widen_factor) {
  CYCLONE_CHECK(o.filters.empty(), "wrn-", depth, "-", widen_factor,
                ": its widths come from the widen factor in its name (wrn-D-K); "
                "num_filters_per_block is not a knob of this model");
  const std::string name = "wrn-" + std::to_string(depth) + "-" + std::to_string(widen_factor);
  CYCLONE_CHECK(depth >= 10 && (depth - 4) % 6 == 0, name, ": depth ", depth,
                " is not 6n + 4 with n >= 1 (valid depths: 10, 16, 22, 28, 34, 40, ...)");
  // Caps against a typo building an absurd network (wrn-280-10 would be fine; wrn-2800-10 is not
  // a model anyone trains).
  CYCLONE_CHECK(depth <= 1000, name, ": depth ", depth, " is beyond the supported 1000");
  CYCLONE_CHECK(widen_factor >= 1 && widen_factor <= 64, name, ": widen factor ", widen_factor,
                " must be in [1, 64]");
  check_model_options(name.c_str(), o);
  const int n = (depth - 4) / 6;
  const int64_t w1 = 16LL * widen_factor, w2 = 32LL * widen_factor, w3 = 64LL * widen_factor;
  Generator gen(o.seed);
  const BlockOptions b = block_options(o, gen);
  conv1_ = register_module("conv1", std::make_shared<Conv2d>(o.in_channels, 16, 3, 1, 1, 1, false,
                                                             o.device, &gen, o.initializer));
  block1_ = register_module("block1", std::make_shared<NetworkBlock>(n, 16, w1, 1, o.dropout, b));
  block2_ = register_module("block2", std::make_shared<NetworkBlock>(n, w1, w2, 2, o.dropout, b));
  block3_ = register_module("block3", std::make_shared<NetworkBlock>(n, w2, w3, 2, o.dropout, b));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(w3, 1e-5, 0.1, true, o.device));
  act_ = register_module("act", std::make_shared<Activation>(o.activation));
  pool_ = register_module("pool", std::make_shared<GlobalAvgPool2d>());
  fc_ = register_module("fc", make_linear(w3, o.num_classes, o, gen));
}

Tensor WideResNet::forward(const Tensor& x) { return forward_stages(x, 0, 5); }

std::vector<Stage> WideResNet::stages() const {
  return {{"stem", {"conv1"}},
          {"block1", {"block1"}},
          {"block2", {"block2"}},
          {"block3", {"block3"}},
          {"head", {"bn1", "act", "pool", "fc"}}};
}

Tensor WideResNet::forward_stages(const Tensor& x, size_t begin, size_t end) {
  CYCLONE_CHECK(begin <= end && end <= 5, "WideResNet: stages [", begin, ", ", end, ") of 5");
  Tensor y = x;
  for (size_t i = begin; i < end; ++i) {
    switch (i) {
      case 0:
        y = (*conv1_)(y);
        break;
      case 1:
        y = (*block1_)(y);
        break;
      case 2:
        y = (*block2_)(y);
        break;
      case 3:
        y = (*block3_)(y);
        break;
      default:
        y = (*fc_)((*pool_)(batch_norm_act(*bn1_, *act_, y)));
    }
  }
  return y;
}

LayerGroups WideResNet::layer_groups() const {
  return {{"early", {"conv1.", "block1."}},
          {"middle", {"block2.", "block3."}},
          {"head", {"bn1.", "fc."}}};
}

std::string WideResNet::extra_repr() const {
  return "depth=" + std::to_string(depth_) + ", widen_factor=" + std::to_string(widen_);
}

}  // namespace cyclone
