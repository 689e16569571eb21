// LeNet-5 (LeCun, Bottou, Bengio & Haffner, "Gradient-Based Learning Applied to Document
// Recognition", Proc. IEEE 1998), in its modern form:
//   conv1 5x5 -> 6, act, pool 2 -> conv2 5x5 -> 16, act, pool 2 -> flatten
//   -> fc1 120, act, [dropout] -> fc2 84, act, [dropout] -> fc3 num_classes
// Differences from 1998, as usually made today: max pooling instead of the trainable
// subsampling layers (max is the common modern choice and has no parameters), a full 6->16
// connection table in conv2, the configured activation instead of the scaled tanh, and a linear
// classifier instead of the RBF output layer.
//
// The paper feeds 32x32 images (28x28 digits centred in a 32x32 field), so an input smaller than
// 32 in either dimension gets conv1 padding 2: MNIST's 28x28x1 and CIFAR's 32x32x3 both reach
// 5x5x16 after pool2 and fc1 has 400 inputs. Other sizes work too (fc1's width follows them).
// Parameters for 10 classes: 61,706 on 28x28x1, 62,006 on 32x32x3.
// Names: conv1, conv2, fc1, fc2, fc3 (each .weight and .bias). ModelOptions::filters [c1, c2]
// replaces the 6 and 16 channels of the two convolutions (microDL's num_filters_per_block).
#pragma once

#include <memory>

#include "cyclone/layers/conv_modules.h"
#include "cyclone/models/options.h"

namespace cyclone {

class LeNet5 : public Module {
 public:
  explicit LeNet5(const ModelOptions& o);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "LeNet5"; }
  // conv1 (conv1, act, pool), conv2 (conv2, act, pool), fc1 (flatten, fc1, act, dropout),
  // fc2 (fc2, act, dropout), fc3. Layer groups conv1 / conv2 / head (fc1, fc2, fc3).
  std::vector<Stage> stages() const override;
  Tensor forward_stages(const Tensor& x, size_t begin, size_t end) override;
  LayerGroups layer_groups() const override;

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_;
  std::shared_ptr<Activation> act1_, act2_, act3_, act4_;
  std::shared_ptr<MaxPool2d> pool1_, pool2_;
  std::shared_ptr<Flatten> flatten_;
  std::shared_ptr<Linear> fc1_, fc2_, fc3_;
  std::shared_ptr<Dropout> drop1_, drop2_;
};

}  // namespace cyclone
