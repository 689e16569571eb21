// Batch norm in training mode (kernels/batchnorm.h, hand-written on both devices), float32 and
// bfloat16 activations (--precision=bf16: x, y, dy, dx bfloat16; weight, bias, statistics
// float32), forward and backward as separate cases:
//   - CUDA: WRN-28-10's widest and narrowest batch norms at batch 128 (128x160x32x32,
//     128x640x8x8), and the widest channels last (128x160x32x32_nhwc: the [131072, 160] view,
//     inner = 1, also with the fused ReLU);
//   - CPU: LeNet-sized 128x16x14x14, CIFAR ResNet-56's first stage 128x16x32x32 (8 MiB of fp32,
//     larger than L2), and the same tensor channels last as BatchNorm2d hands it over: the
//     [N H W, C] view 131072x16 (inner = 1: each channel strided by C).
// cost (n = N C H W elements of T): forward reads x twice (statistics, then normalize) and writes
// y: 3n sizeof(T) bytes; backward reads x and dy twice each and writes dx: 5n sizeof(T) bytes;
// ~10 flops per element. Memory-bound: bf16 should take about half of float32's time at the same
// fraction of the bandwidth. PyTorch's twin (benchmarks/pytorch/kernels.py) runs cuDNN's or
// ATen's batch norm on the same shapes: the comparison issue 8 asks for (use cuDNN where faster).
//
// BN followed by ReLU, the pairs of the residual networks, two ways on the same shapes:
//   batchnorm_relu_{fwd,bwd}: the fused kernels (kernels/batchnorm.h batch_norm_relu_*): forward
//     3n, backward 5n element accesses, as batch norm alone;
//   bn_then_relu_{fwd,bwd}: batch norm, then kernels::unary relu (forward 3n + 2n); backward,
//     relu's then batch norm's (3n + 5n).
// Expected: fused/pair time ~ 3/5 forward and ~ 5/8 backward where memory bound (the GPU); the
// bytes/s column counts each case's own accesses, so equal bandwidth means the prediction held.
//
// sync_batchnorm_fwd: layers/norm_ops.h sync_batch_norm's forward in a world of one (the replica
// sum does nothing), float32: this replica's statistics, the per-channel kernels of
// kernels/sync_batchnorm.h, then the normalisation with the global statistics; the same shapes
// as batchnorm_fwd. Bytes counted as batch norm's 3n: the ratio of the two cases' times is the
// price of synchronizing (a statistics-only first pass makes it ~1; normalising twice ~5/3).
#include "bench_util.h"
#include "cyclone/kernels/batchnorm.h"
#include "cyclone/kernels/elementwise.h"
#include "cyclone/layers/norm_ops.h"

namespace cyclone::bench {

namespace {
// What runs after (or, backward, before) the normalisation.
enum class Relu { kNone, kFused, kSeparate };

// `label` names the shape in the case's name when it is not shape_str(shape).
void add_batchnorm_case(Device device, const std::string& precision, bool backward,
                        const Shape& shape, Relu relu = Relu::kNone,
                        const std::string& label = "") {
  const DType dt = precision_dtype(precision);
  const int64_t n = shape.numel(), c = shape[1];
  Cost cost;
  cost.flops = 10.0 * static_cast<double>(n);
  const double accesses =
      (backward ? 5.0 : 3.0) + (relu == Relu::kSeparate ? (backward ? 3.0 : 2.0) : 0.0);
  cost.bytes = accesses * static_cast<double>(n) * static_cast<double>(dtype_size(dt));
  const char* name = relu == Relu::kNone ? (backward ? "batchnorm_bwd" : "batchnorm_fwd")
                     : relu == Relu::kFused
                         ? (backward ? "batchnorm_relu_bwd" : "batchnorm_relu_fwd")
                         : (backward ? "bn_then_relu_bwd" : "bn_then_relu_fwd");
  register_case(case_name(name, device, precision, label.empty() ? shape_str(shape) : label),
                device, cost, [device, dt, backward, shape, c, relu] {
                  // Each set: x, dy, y/dx, weight, bias, running mean and var, saved mean and
                  // invstd, and the separate ReLU's tensor (its output forward, the masked gradient
                  // backward).
                  const Shape cs{c};
                  std::vector<Tensor> first{random_tensor_as(shape, dt, device, 1),
                                            random_tensor_as(shape, dt, device, 2),
                                            Tensor::empty(shape, dt, device),
                                            random_tensor(cs, device, 3, 0.5, 1.5),
                                            random_tensor(cs, device, 4),
                                            random_tensor(cs, device, 5),
                                            random_tensor(cs, device, 6, 0.5, 2.0),
                                            Tensor::empty(cs, DType::kFloat32, device),
                                            Tensor::empty(cs, DType::kFloat32, device),
                                            Tensor::empty(shape, dt, device)};
                  auto sets = rotated_sets(std::move(first));
                  Context& ctx = Context::current(device);
                  for (auto& s : sets)  // the saved statistics the backward reads
                    kernels::batch_norm_forward(ctx, s[0], s[3], s[4], s[5], s[6], true, 0.1, 1e-5,
                                                s[2], s[7], s[8]);
                  return [device, backward, relu, sets = std::move(sets)](int64_t i) {
                    const auto& s = sets[static_cast<size_t>(i) % sets.size()];
                    Context& ctx = Context::current(device);
                    if (relu == Relu::kFused) {
                      if (backward)
                        kernels::batch_norm_relu_backward(ctx, s[0], s[1], s[3], s[4], s[7], s[8],
                                                          true, s[2], Tensor(), Tensor());
                      else
                        kernels::batch_norm_relu_forward(ctx, s[0], s[3], s[4], s[5], s[6], true,
                                                         0.1, 1e-5, s[2], s[7], s[8]);
                      return;
                    }
                    const bool separate = relu == Relu::kSeparate;
                    if (backward) {
                      // The separate ReLU's backward masks dy by its input (here y's stand-in,
                      // s[0]).
                      if (separate)
                        kernels::binary(ctx, kernels::BinaryOp::kReluBackward, s[1], s[0], s[9]);
                      kernels::batch_norm_backward(ctx, s[0], separate ? s[9] : s[1], s[3], s[7],
                                                   s[8], true, s[2], Tensor(), Tensor());
                    } else {
                      kernels::batch_norm_forward(ctx, s[0], s[3], s[4], s[5], s[6], true, 0.1,
                                                  1e-5, s[2], s[7], s[8]);
                      if (separate) kernels::unary(ctx, kernels::UnaryOp::kRelu, s[2], s[9]);
                    }
                  };
                });
}
void add_sync_batchnorm_case(Device device, const Shape& shape) {
  const int64_t n = shape.numel(), c = shape[1];
  Cost cost;
  cost.flops = 10.0 * static_cast<double>(n);
  cost.bytes = 3.0 * static_cast<double>(n) * sizeof(float);
  register_case(case_name("sync_batchnorm_fwd", device, "fp32", shape_str(shape)), device, cost,
                [device, shape, c] {
                  const Shape cs{c};
                  auto sets = rotated_sets(std::vector<Tensor>{
                      random_tensor_as(shape, DType::kFloat32, device, 1),
                      random_tensor(cs, device, 3, 0.5, 1.5), random_tensor(cs, device, 4),
                      random_tensor(cs, device, 5), random_tensor(cs, device, 6, 0.5, 2.0)});
                  return [sets = std::move(sets)](int64_t i) {
                    const auto& s = sets[static_cast<size_t>(i) % sets.size()];
                    (void)sync_batch_norm(s[0], s[3], s[4], s[1], s[2], 0.1, 1e-5,
                                          [](const Tensor&) {});
                  };
                });
}

}  // namespace

void register_batchnorm() {
  for (const char* precision : {"fp32", "bf16"})
    for (bool backward : {false, true}) {
      for (const Shape& s : {Shape{128, 160, 32, 32}, Shape{128, 640, 8, 8}})
        add_batchnorm_case(Device::cuda(), precision, backward, s);
      // WRN-28-10's widest batch norm channels last, as BatchNorm2d hands it to the kernels: the
      // [N H W, C] view (PyTorch's twin: the NCHW tensor in torch.channels_last).
      add_batchnorm_case(Device::cuda(), precision, backward, Shape{128 * 32 * 32, 160},
                         Relu::kNone, "128x160x32x32_nhwc");
      add_batchnorm_case(Device::cuda(), precision, backward, Shape{128 * 32 * 32, 160},
                         Relu::kFused, "128x160x32x32_nhwc");
      for (const Shape& s : {Shape{128, 16, 14, 14}, Shape{128, 16, 32, 32}, Shape{131072, 16}})
        add_batchnorm_case(Device::cpu(), precision, backward, s);
      if (!backward && std::string(precision) == "fp32") {
        add_sync_batchnorm_case(Device::cuda(), Shape{128, 160, 32, 32});
        add_sync_batchnorm_case(Device::cpu(), Shape{128, 16, 14, 14});
      }
      for (Relu relu : {Relu::kFused, Relu::kSeparate}) {
        add_batchnorm_case(Device::cuda(), precision, backward, Shape{128, 160, 32, 32}, relu);
        add_batchnorm_case(Device::cpu(), precision, backward, Shape{128, 16, 14, 14}, relu);
      }
    }
}

}  // namespace cyclone::bench
