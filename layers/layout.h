// Channels-last training: the activations of a model's image layers live in NHWC memory, the
// layout of the GPU's tensor-core convolutions (cuDNN's fast bf16/TF32 kernels read and write
// NHWC; given NCHW they transpose internally, which costs bandwidth on every call). This is what
// torch's `model.to(memory_format=torch.channels_last)` is for; Cyclone's tensors are plain
// row-major blocks with no strides, so the layout is a scope instead of a tensor property.
//
// A model runs channels-last when Module::set_channels_last(true) was called on it: its
// Module::operator() opens a ChannelsLastScope around forward(), transposes a rank-4 input
// [N, C, H, W] to [N, H, W, C] (a copy), and a rank-4 output back. Inside the scope every rank-4
// activation is an [N, H, W, C] tensor, and the image layers read the scope:
//   Conv2d          kernels/conv.h with channels_last: NHWC in and out; the parameter keeps
//                   PyTorch's [Cout, Cin, kh, kw] (state dicts, optimizers and checkpoints do
//                   not change) and is transposed to [Cout, kh, kw, Cin] on each call
//                   (differentiable; 1x1 kernels need no copy).
//   BatchNorm2d     batch norm of the [N H W, C] view (the same statistics per channel).
//   GlobalAvgPool2d the mean over H W of the [N, H W, C] view.
//   MaxPool2d, AvgPool2d  transposed to NCHW and back (correct, not fast: LeNet-size maps).
//   Flatten         transposes a rank-4 input back to NCHW first, so a following Linear sees
//                   PyTorch's feature order and its weights stay interchangeable.
// Elementwise layers (activations, dropout, residual additions) are layout-free. The results
// equal the NCHW model's up to the summation order of the convolution algorithms.
//
// Off by default (NCHW). A sequence of modules that runs outside Module::operator() (forward()
// called directly) runs in NCHW unless a scope is open.
#pragma once

#include "cyclone/core/tensor.h"
#include "cyclone/kernels/conv.h"

namespace cyclone {

// Whether the calling thread's rank-4 activations are NHWC now.
bool channels_last_active();

// Sets the thread's layout for its lifetime; scopes nest.
class ChannelsLastScope {
 public:
  explicit ChannelsLastScope(bool on = true);
  ~ChannelsLastScope();
  ChannelsLastScope(const ChannelsLastScope&) = delete;
  ChannelsLastScope& operator=(const ChannelsLastScope&) = delete;

 private:
  bool previous_;
};

// Differentiable layout changes of rank-4 tensors (kernels/transpose.h; the gradient is the
// inverse transpose): [N, C, H, W] -> [N, H, W, C], and back.
Tensor to_channels_last(const Tensor& x);
Tensor to_channels_first(const Tensor& x);

// The channel axis of an activation in the active layout: 3 for a rank-4 tensor in a
// channels-last scope, else 1.
int channel_axis(const Tensor& x);

// conv2d (layers/conv_ops.h) with the weight in PyTorch's [Cout, Cin, kh, kw] layout and x in
// the active layout: NCHW as conv2d, or in a channels-last scope x [N, H, W, Cin] -> [N, Hout,
// Wout, Cout] with the weight transposed for the call.
Tensor conv2d_in_layout(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        kernels::Conv2dParams params);

}  // namespace cyclone
