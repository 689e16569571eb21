#include "cyclone/models/lenet.h"

namespace cyclone {

LeNet5::LeNet5(const ModelOptions& o) {
  check_model_options("lenet5", o);
  const int pad = (o.height < 32 || o.width < 32) ? 2 : 0;
  // conv 5x5 (-4), pool 2 (/2), twice.
  const int64_t h = ((o.height + 2 * pad - 4) / 2 - 4) / 2;
  const int64_t w = ((o.width + 2 * pad - 4) / 2 - 4) / 2;
  CYCLONE_CHECK(h > 0 && w > 0, "lenet5: input ", o.height, "x", o.width,
                " is too small (two 5x5 convolutions and two 2x2 pools need at least 16x16 after "
                "padding by ",
                pad, ")");
  CYCLONE_CHECK(o.filters.empty() || o.filters.size() == 2,
                "lenet5: num_filters_per_block needs 2 values (conv1, conv2), got ",
                o.filters.size());
  const int64_t c1 = o.filters.empty() ? 6 : o.filters[0];
  const int64_t c2 = o.filters.empty() ? 16 : o.filters[1];
  Generator gen(o.seed);
  const BlockOptions b = block_options(o, gen);
  conv1_ = register_module("conv1", std::make_shared<Conv2d>(o.in_channels, c1, 5, 1, pad, 1, true,
                                                             o.device, &gen, o.initializer));
  act1_ = register_module("act1", std::make_shared<Activation>(o.activation));
  pool1_ = register_module("pool1", std::make_shared<MaxPool2d>(2));
  conv2_ = register_module(
      "conv2", std::make_shared<Conv2d>(c1, c2, 5, 1, 0, 1, true, o.device, &gen, o.initializer));
  act2_ = register_module("act2", std::make_shared<Activation>(o.activation));
  pool2_ = register_module("pool2", std::make_shared<MaxPool2d>(2));
  flatten_ = register_module("flatten", std::make_shared<Flatten>());
  fc1_ = register_module("fc1", make_linear(c2 * h * w, 120, o, gen));
  act3_ = register_module("act3", std::make_shared<Activation>(o.activation));
  if (o.dropout > 0)
    drop1_ = register_module("drop1", std::make_shared<Dropout>(o.dropout, b.dropout_gen));
  fc2_ = register_module("fc2", make_linear(120, 84, o, gen));
  act4_ = register_module("act4", std::make_shared<Activation>(o.activation));
  if (o.dropout > 0)
    drop2_ = register_module("drop2", std::make_shared<Dropout>(o.dropout, b.dropout_gen));
  fc3_ = register_module("fc3", make_linear(84, o.num_classes, o, gen));
}

Tensor LeNet5::forward(const Tensor& x) { return forward_stages(x, 0, 5); }

std::vector<Stage> LeNet5::stages() const {
  std::vector<Stage> st = {{"conv1", {"conv1", "act1", "pool1"}},
                           {"conv2", {"conv2", "act2", "pool2"}},
                           {"fc1", {"flatten", "fc1", "act3"}},
                           {"fc2", {"fc2", "act4"}},
                           {"fc3", {"fc3"}}};
  if (drop1_) st[2].modules.push_back("drop1");
  if (drop2_) st[3].modules.push_back("drop2");
  return st;
}

Tensor LeNet5::forward_stages(const Tensor& x, size_t begin, size_t end) {
  CYCLONE_CHECK(begin <= end && end <= 5, "LeNet5: stages [", begin, ", ", end, ") of 5");
  Tensor y = x;
  for (size_t i = begin; i < end; ++i) {
    switch (i) {
      case 0:
        y = (*pool1_)((*act1_)((*conv1_)(y)));
        break;
      case 1:
        y = (*pool2_)((*act2_)((*conv2_)(y)));
        break;
      case 2:
        y = (*act3_)((*fc1_)((*flatten_)(y)));
        if (drop1_) y = (*drop1_)(y);
        break;
      case 3:
        y = (*act4_)((*fc2_)(y));
        if (drop2_) y = (*drop2_)(y);
        break;
      default:
        y = (*fc3_)(y);
    }
  }
  return y;
}

LayerGroups LeNet5::layer_groups() const {
  return {{"conv1", {"conv1."}}, {"conv2", {"conv2."}}, {"head", {"fc1.", "fc2.", "fc3."}}};
}

}  // namespace cyclone
