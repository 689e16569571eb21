#include "cyclone/layers/residual.h"

#include <sstream>
#include <vector>

#include "cyclone/layers/autocast.h"
#include "cyclone/layers/layout.h"
#include "cyclone/layers/ops.h"

namespace cyclone {

namespace {

void check_block(const char* type, int64_t in, int64_t out, int stride) {
  CYCLONE_CHECK(in > 0 && out > 0, type, "(", in, ", ", out, "): channel counts must be positive");
  CYCLONE_CHECK(stride > 0, type, "(", in, ", ", out, "): stride must be positive, got ", stride);
}

std::string block_repr(int64_t in, int64_t out, int stride) {
  std::ostringstream os;
  os << in << ", " << out << ", stride=" << stride;
  return os.str();
}

}  // namespace

WideBasicBlock::WideBasicBlock(int64_t in_channels, int64_t out_channels, int stride,
                               double dropout, const BlockOptions& o)
    : in_(in_channels), out_(out_channels), stride_(stride) {
  check_block("WideBasicBlock", in_channels, out_channels, stride);
  // Registration order = state-dict order = the reference's attribute order.
  bn1_ =
      register_module("bn1", std::make_shared<BatchNorm2d>(in_channels, 1e-5, 0.1, true, o.device));
  act1_ = register_module("act1", std::make_shared<Activation>(o.activation));
  conv1_ =
      register_module("conv1", std::make_shared<Conv2d>(in_channels, out_channels, 3, stride, 1, 1,
                                                        false, o.device, o.gen, o.initializer));
  bn2_ = register_module("bn2",
                         std::make_shared<BatchNorm2d>(out_channels, 1e-5, 0.1, true, o.device));
  act2_ = register_module("act2", std::make_shared<Activation>(o.activation));
  if (dropout > 0)
    dropout_ = register_module("dropout", std::make_shared<Dropout>(dropout, o.dropout_gen));
  conv2_ =
      register_module("conv2", std::make_shared<Conv2d>(out_channels, out_channels, 3, 1, 1, 1,
                                                        false, o.device, o.gen, o.initializer));
  if (in_channels != out_channels || stride != 1)
    shortcut_ = register_module(
        "convShortcut", std::make_shared<Conv2d>(in_channels, out_channels, 1, stride, 0, 1, false,
                                                 o.device, o.gen, o.initializer));
}

Tensor WideBasicBlock::forward(const Tensor& x) {
  Tensor o = batch_norm_act(*bn1_, *act1_, x);
  Tensor y = batch_norm_act(*bn2_, *act2_, (*conv1_)(o));
  if (dropout_) y = (*dropout_)(y);
  y = (*conv2_)(y);
  return add(y, shortcut_ ? (*shortcut_)(o) : x);
}

std::string WideBasicBlock::extra_repr() const { return block_repr(in_, out_, stride_); }

CifarBasicBlock::CifarBasicBlock(int64_t in_channels, int64_t out_channels, int stride,
                                 const BlockOptions& o)
    : in_(in_channels), out_(out_channels), stride_(stride) {
  check_block("CifarBasicBlock", in_channels, out_channels, stride);
  CYCLONE_CHECK(out_channels >= in_channels && (out_channels - in_channels) % 2 == 0,
                "CifarBasicBlock(", in_channels, ", ", out_channels,
                "): the option-A shortcut pads channels symmetrically, so out - in must be even "
                "and non-negative");
  conv1_ =
      register_module("conv1", std::make_shared<Conv2d>(in_channels, out_channels, 3, stride, 1, 1,
                                                        false, o.device, o.gen, o.initializer));
  bn1_ = register_module("bn1",
                         std::make_shared<BatchNorm2d>(out_channels, 1e-5, 0.1, true, o.device));
  act1_ = register_module("act1", std::make_shared<Activation>(o.activation));
  conv2_ =
      register_module("conv2", std::make_shared<Conv2d>(out_channels, out_channels, 3, 1, 1, 1,
                                                        false, o.device, o.gen, o.initializer));
  bn2_ = register_module("bn2",
                         std::make_shared<BatchNorm2d>(out_channels, 1e-5, 0.1, true, o.device));
  act2_ = register_module("act2", std::make_shared<Activation>(o.activation));
  if (in_channels != out_channels || stride != 1) {
    // w[c + offset, c] = 1: output channel c + offset copies input channel c.
    const int64_t offset = (out_channels - in_channels) / 2;
    std::vector<float> w(static_cast<size_t>(out_channels * in_channels), 0.0f);
    for (int64_t c = 0; c < in_channels; ++c)
      w[static_cast<size_t>((c + offset) * in_channels + c)] = 1.0f;
    pad_weight_ = Tensor::from_vector(w, {out_channels, in_channels, 1, 1}, o.device);
  }
}

Tensor CifarBasicBlock::forward(const Tensor& x) {
  Tensor y = batch_norm_act(*bn1_, *act1_, (*conv1_)(x));
  y = (*bn2_)((*conv2_)(y));
  Tensor shortcut = x;
  if (pad_weight_.defined()) {
    // The constant is not a buffer (it is no part of the reference's state dict), so Module::to()
    // does not move it: follow the input's device here.
    if (!(pad_weight_.device() == x.device())) pad_weight_ = pad_weight_.to(x.device());
    // And its dtype, unless autocast casts both (0 and 1 are exact in every dtype): a float64
    // model (a gradient check) or one cast to 16 bits.
    if (pad_weight_.dtype() != x.dtype() && !autocast_applies(x, pad_weight_))
      pad_weight_ = cast(pad_weight_, x.dtype()).detach();
    shortcut = conv2d_in_layout(x, pad_weight_, Tensor(), Conv2dParams::square(stride_, 0, 1));
  }
  return (*act2_)(add(y, shortcut));
}

std::string CifarBasicBlock::extra_repr() const { return block_repr(in_, out_, stride_); }

}  // namespace cyclone
