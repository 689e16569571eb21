// Convolution through kernels/conv.h (cuDNN on CUDA, im2col + OpenBLAS on the CPU), NCHW:
// forward, backward-data and backward-filter as separate cases, for
//   - every distinct conv layer of WRN-28-10 on 32x32 CIFAR at batch 128, on CUDA, fp32 (CUDNN_FMA
//     math), TF32 (ctx.set_allow_tf32) and bf16 (bfloat16 x, w, y, float32 accumulation on the
//     bf16 tensor cores: what --precision=bf16 runs): the stem 3->16; group 1 16->160, 160->160 at
//     32x32 and the 1x1 shortcut 16->160; group 2 160->320 stride 2 (32->16), 320->320 at 16x16 and
//     the 1x1 stride-2 shortcut 160->320; group 3 320->640 stride 2 (16->8), 640->640 at 8x8 and
//     the 1x1 stride-2 shortcut 320->640 (3x3 convs padded by 1);
//   - the two conv layers of LeNet-5 at batch 128 on the CPU: 1->6 5x5 padding 2 on 28x28 and
//     6->16 5x5 on 14x14;
//   - the 3x3 convs of a CIFAR ResNet (ResNet-56's 16, 32 and 64 channels, padded by 1) at batch
//     128 on the CPU, where im2col / col2im are a large part of a step: 16->16 at 32x32, 32->32 at
//     16x16, 64->64 at 8x8 and the stride-2 16->32 (32->16).
// cost: 2 N Cout Hout Wout Cin kh kw flops per pass (each of the three); at least
// (|x| + |w| + |y|) * sizeof(T) bytes. Counters: FLOP/s and the fraction of the fp32 (TF32, BF16)
// peak.
// The first (warm-up) call of a shape times cuDNN's algorithms (cudnnFind*Ex) and caches the
// choice, so the timed calls measure the chosen algorithm only.
#include <string>

#include "bench_util.h"
#include "cyclone/kernels/conv.h"

namespace cyclone::bench {

namespace {

enum class Pass { kForward, kBackwardData, kBackwardFilter };

struct Layer {
  int64_t c_in, c_out, hw, k;  // square input hw x hw, square kernel k x k
  int stride, pad;
};

const char* pass_name(Pass p) {
  switch (p) {
    case Pass::kForward:
      return "conv_fwd";
    case Pass::kBackwardData:
      return "conv_bwd_data";
    case Pass::kBackwardFilter:
      return "conv_bwd_filter";
  }
  return "conv";
}

void add_conv_case(Device device, Pass pass, const std::string& precision, int64_t batch,
                   const Layer& l) {
  const bool tf32 = precision == "tf32";
  const DType dt = precision_dtype(precision);
  const Shape xs{batch, l.c_in, l.hw, l.hw}, ws{l.c_out, l.c_in, l.k, l.k};
  const kernels::Conv2dParams p = kernels::Conv2dParams::square(l.stride, l.pad);
  const kernels::Conv2dGeometry g = kernels::conv2d_geometry("bench_conv", xs, ws, p);
  const Shape ys{g.n, g.c_out, g.h_out, g.w_out};
  Cost cost;
  cost.flops = g.flops();
  cost.bytes = static_cast<double>(xs.numel() + ws.numel() + ys.numel()) *
               static_cast<double>(dtype_size(dt));
  cost.peak = dt == DType::kBFloat16 ? Peak::kBf16 : tf32 ? Peak::kTf32 : Peak::kFp32;
  const std::string shape = shape_str(xs) + "_w" + shape_str(ws) + "_s" + std::to_string(l.stride) +
                            "p" + std::to_string(l.pad);
  register_case(case_name(pass_name(pass), device, precision, shape), device, cost,
                [device, pass, tf32, dt, xs, ws, ys, p] {
                  // Each set: x, w, y (or dy), and the pass's output.
                  std::vector<Tensor> first{random_tensor_as(xs, dt, device, 1),
                                            random_tensor_as(ws, dt, device, 2),
                                            random_tensor_as(ys, dt, device, 3)};
                  if (pass == Pass::kBackwardData) first.push_back(Tensor::empty(xs, dt, device));
                  if (pass == Pass::kBackwardFilter) first.push_back(Tensor::empty(ws, dt, device));
                  auto sets = rotated_sets(std::move(first));
                  return [device, pass, tf32, p, sets = std::move(sets)](int64_t i) {
                    const auto& s = sets[static_cast<size_t>(i) % sets.size()];
                    Context& ctx = Context::current(device);
                    // Set on every call: one context serves every case, fp32 and TF32 alike.
                    ctx.set_allow_tf32(tf32);
                    switch (pass) {
                      case Pass::kForward:
                        kernels::conv2d_forward(ctx, s[0], s[1], Tensor(), p, s[2]);
                        break;
                      case Pass::kBackwardData:
                        kernels::conv2d_backward_data(ctx, s[2], s[1], p, s[3]);
                        break;
                      case Pass::kBackwardFilter:
                        kernels::conv2d_backward_filter(ctx, s[0], s[2], p, s[3]);
                        break;
                    }
                  };
                });
}

}  // namespace

void register_conv() {
  const Pass passes[] = {Pass::kForward, Pass::kBackwardData, Pass::kBackwardFilter};
  // WRN-28-10 (width 10: 160, 320, 640 channels), CIFAR 32x32, batch 128.
  const Layer wrn[] = {
      {3, 16, 32, 3, 1, 1},    {16, 160, 32, 3, 1, 1},  {160, 160, 32, 3, 1, 1},
      {16, 160, 32, 1, 1, 0},  {160, 320, 32, 3, 2, 1}, {320, 320, 16, 3, 1, 1},
      {160, 320, 32, 1, 2, 0}, {320, 640, 16, 3, 2, 1}, {640, 640, 8, 3, 1, 1},
      {320, 640, 16, 1, 2, 0},
  };
  for (const char* precision : {"fp32", "tf32", "bf16"})
    for (const Layer& l : wrn)
      for (Pass pass : passes) add_conv_case(Device::cuda(), pass, precision, 128, l);
  // LeNet-5, MNIST 28x28, batch 128.
  const Layer lenet[] = {{1, 6, 28, 5, 1, 2}, {6, 16, 14, 5, 1, 0}};
  for (const Layer& l : lenet)
    for (Pass pass : passes) add_conv_case(Device::cpu(), pass, "fp32", 128, l);
  // ResNet-56's 3x3 convs, CIFAR 32x32, batch 128.
  const Layer resnet[] = {
      {16, 16, 32, 3, 1, 1}, {32, 32, 16, 3, 1, 1}, {64, 64, 8, 3, 1, 1}, {16, 32, 32, 3, 2, 1}};
  for (const Layer& l : resnet)
    for (Pass pass : passes) add_conv_case(Device::cpu(), pass, "fp32", 128, l);
}

}  // namespace cyclone::bench
