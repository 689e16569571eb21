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
  Generator gen(o.seed);
  const BlockOptions b = block_options(o, gen);
  conv1_ = register_module("conv1", std::make_shared<Conv2d>(o.in_channels, 6, 5, 1, pad, 1, true,
                                                             o.device, &gen, o.initializer));
  act1_ = register_module("act1", std::make_shared<Activation>(o.activation));
  pool1_ = register_module("pool1", std::make_shared<MaxPool2d>(2));
  conv2_ = register_module(
      "conv2", std::make_shared<Conv2d>(6, 16, 5, 1, 0, 1, true, o.device, &gen, o.initializer));
  act2_ = register_module("act2", std::make_shared<Activation>(o.activation));
  pool2_ = register_module("pool2", std::make_shared<MaxPool2d>(2));
  flatten_ = register_module("flatten", std::make_shared<Flatten>());
  fc1_ = register_module("fc1", make_linear(16 * h * w, 120, o, gen));
  act3_ = register_module("act3", std::make_shared<Activation>(o.activation));
  if (o.dropout > 0)
    drop1_ = register_module("drop1", std::make_shared<Dropout>(o.dropout, b.dropout_gen));
  fc2_ = register_module("fc2", make_linear(120, 84, o, gen));
  act4_ = register_module("act4", std::make_shared<Activation>(o.activation));
  if (o.dropout > 0)
    drop2_ = register_module("drop2", std::make_shared<Dropout>(o.dropout, b.dropout_gen));
  fc3_ = register_module("fc3", make_linear(84, o.num_classes, o, gen));
}

Tensor LeNet5::forward(const Tensor& x) {
  Tensor y = (*pool1_)((*act1_)((*conv1_)(x)));
  y = (*flatten_)((*pool2_)((*act2_)((*conv2_)(y))));
  y = (*act3_)((*fc1_)(y));
  if (drop1_) y = (*drop1_)(y);
  y = (*act4_)((*fc2_)(y));
  if (drop2_) y = (*drop2_)(y);
  return (*fc3_)(y);
}

}  // namespace cyclone
