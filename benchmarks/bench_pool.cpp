// Max pooling, forward and backward (kernels/pool.h), float32 NCHW:
//   forward:  y, indices = max over each kh x kw window (int32 plane index of the winner)
//   backward: dx = dy sent to each window's winner (0 elsewhere)
// cost: forward reads x and writes y and the indices, |x| + |y| floats and |y| int32s (its kh kw
// compares per output are not the bound); backward reads dy and the indices and writes dx.
// Shapes: LeNet-5's two pools at batch 128 (2x2, stride 2) and a ResNet stem's 3x3 stride-2
// pool with padding 1 (128x64x32x32).
#include <string>

#include "bench_util.h"
#include "cyclone/kernels/pool.h"

namespace cyclone::bench {

namespace {
// Square windows: "128x6x28x28_k2s2", "..._k3s2p1" (padding named when there is some).
void add_max_pool_case(Device device, const Shape& x_shape, const kernels::Pool2dParams& p) {
  const kernels::Pool2dGeometry g = kernels::pool2d_geometry("bench", x_shape, p);
  const Shape y_shape{g.n, g.c, g.h_out, g.w_out};
  const double nx = static_cast<double>(x_shape.numel()), ny = static_cast<double>(y_shape.numel());
  const std::string pad = p.pad_h > 0 ? std::string("p") + std::to_string(p.pad_h) : std::string();
  const std::string shape =
      shape_str(x_shape) + "_k" + std::to_string(p.kh) + "s" + std::to_string(p.stride_h) + pad;
  for (bool backward : {false, true}) {
    Cost cost;
    cost.bytes = (nx + ny) * sizeof(float) + ny * sizeof(int32_t);  // either direction
    register_case(case_name(backward ? "max_pool_bwd" : "max_pool_fwd", device, "fp32", shape),
                  device, cost, [device, x_shape, y_shape, p, backward] {
                    Context& ctx = Context::current(device);
                    const Tensor x = random_tensor(x_shape, device, 11);
                    const Tensor y = Tensor::empty(y_shape, DType::kFloat32, device);
                    const Tensor idx = Tensor::empty(y_shape, DType::kInt32, device);
                    kernels::max_pool2d_forward(ctx, x, p, y, idx);  // the backward's indices
                    auto sets = rotated_sets({x, y, idx, random_tensor(y_shape, device, 12),
                                              Tensor::empty(x_shape, DType::kFloat32, device)});
                    return [device, p, backward, sets = std::move(sets)](int64_t i) {
                      const auto& s = sets[static_cast<size_t>(i) % sets.size()];
                      Context& c = Context::current(device);
                      if (backward)
                        kernels::max_pool2d_backward(c, s[3], s[2], p, s[4]);
                      else
                        kernels::max_pool2d_forward(c, s[0], p, s[1], s[2]);
                    };
                  });
  }
}
}  // namespace

void register_pool() {
  for (Device device : {Device::cpu(), Device::cuda()}) {
    add_max_pool_case(device, Shape{128, 6, 28, 28}, kernels::Pool2dParams::square(2));
    add_max_pool_case(device, Shape{128, 16, 10, 10}, kernels::Pool2dParams::square(2));
    add_max_pool_case(device, Shape{128, 64, 32, 32}, kernels::Pool2dParams::square(3, 2, 1));
  }
}

}  // namespace cyclone::bench
