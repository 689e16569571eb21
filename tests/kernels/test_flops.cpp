// kernels::FlopCounter: every GEMM and convolution pass launched while a counter lives adds its
// 2 M N K (or 2 N Cout Hout Wout Cin kh kw) FLOPs, nested counters all see them, nothing is
// counted without one, and a whole model's step adds up its layers' passes.
#include <gtest/gtest.h>

#include "common/test_util.h"

namespace cyclone {
namespace {

using testing::random_tensor;

TEST(FlopCounter, CountsGemmsAndConvolutionPassesWhileAlive) {
  Context& ctx = Context::current(Device::cpu());
  const Tensor a = random_tensor({7, 13}, 1), b = random_tensor({13, 5}, 2);
  const Tensor c = Tensor::empty({7, 5}, DType::kFloat32, Device::cpu());
  kernels::gemm(ctx, false, false, 1.0, a, b, 0.0, c);  // no counter: nothing to see
  kernels::FlopCounter outer;
  kernels::gemm(ctx, false, false, 1.0, a, b, 0.0, c);
  EXPECT_EQ(outer.flops(), 2.0 * 7 * 5 * 13);
  {
    kernels::FlopCounter inner;
    const Tensor ab = random_tensor({3, 7, 13}, 3);
    const Tensor cb = Tensor::empty({3, 7, 5}, DType::kFloat32, Device::cpu());
    kernels::gemm_batched(ctx, false, false, 1.0, ab, b, 0.0, cb);
    EXPECT_EQ(inner.flops(), 3 * 2.0 * 7 * 5 * 13);
  }
  EXPECT_EQ(outer.flops(), 4 * 2.0 * 7 * 5 * 13) << "an enclosing counter sees the inner work";

  kernels::FlopCounter conv;
  const Tensor x = random_tensor({2, 3, 9, 9}, 4), w = random_tensor({4, 3, 3, 3}, 5);
  const Tensor y = Tensor::empty({2, 4, 4, 4}, DType::kFloat32, Device::cpu());
  const auto p = kernels::Conv2dParams::square(2, 0);
  kernels::conv2d_forward(ctx, x, w, Tensor(), p, y);
  kernels::conv2d_backward_data(ctx, y, w, p,
                                Tensor::empty(x.shape(), DType::kFloat32, Device::cpu()));
  kernels::conv2d_backward_filter(ctx, x, y, p,
                                  Tensor::empty(w.shape(), DType::kFloat32, Device::cpu()));
  EXPECT_EQ(conv.flops(), 3 * 2.0 * 2 * 4 * 4 * 4 * 3 * 3 * 3);
}

// One training step of a small CNN: forward, backward data (except into the input image, which
// needs no gradient) and backward filter of each convolution, and the three products of each
// linear layer.
TEST(FlopCounter, AModelStepAddsUpItsLayers) {
  Sequential net;
  net.add(std::make_shared<Conv2d>(1, 4, 3, 1, 1));
  net.add(std::make_shared<Flatten>());
  net.add(std::make_shared<Linear>(4 * 6 * 6, 10));
  const Tensor x = random_tensor({5, 1, 6, 6}, 6);
  kernels::FlopCounter counter;
  sum(net(x)).backward();
  const double conv = 2.0 * 5 * 4 * 6 * 6 * 1 * 3 * 3, fc = 2.0 * 5 * 10 * 144;
  EXPECT_EQ(counter.flops(), 2 * conv + 3 * fc);
}

}  // namespace
}  // namespace cyclone
