// The CPU batch norm's sums are chunked by the shape and spread over the thread pool
// (kernels/cpu/batchnorm.cpp): its results must not depend on how many threads ran the chunks.
// The pool's size is fixed per process (CYCLONE_NUM_THREADS), but a parallel_for issued from
// inside a pool chunk runs inline (core/parallel.h), so calling the kernels there is the
// one-thread run; called from the test's thread they use the whole pool. Shapes of several chunks
// per channel with a partial last one, both layouts, with and without the fused ReLU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/test_util.h"

namespace cyclone {
namespace {

struct Outputs {
  std::vector<Tensor> all;  // y, save_mean, save_invstd, running_mean, running_var, dx, dw, db
};

Outputs run(const Shape& s, bool relu, bool training) {
  const int64_t C = s[1];
  const Device cpu = Device::cpu();
  const Tensor x = testing::random_tensor(s, 5, DType::kFloat32, cpu, -2, 3);
  const Tensor dy = testing::random_tensor(s, 6, DType::kFloat32, cpu);
  const Tensor w = testing::random_tensor({C}, 7, DType::kFloat32, cpu, 0.5, 1.5);
  const Tensor b = testing::random_tensor({C}, 8, DType::kFloat32, cpu);
  const Tensor rm = testing::random_tensor({C}, 9, DType::kFloat32, cpu);
  const Tensor rv = testing::random_tensor({C}, 10, DType::kFloat32, cpu, 0.5, 2);
  Outputs o;
  o.all = {testing::nan_tensor(s, DType::kFloat32, cpu),
           testing::nan_tensor({C}, DType::kFloat32, cpu),
           testing::nan_tensor({C}, DType::kFloat32, cpu),
           rm,
           rv,
           testing::nan_tensor(s, DType::kFloat32, cpu),
           testing::nan_tensor({C}, DType::kFloat32, cpu),
           testing::nan_tensor({C}, DType::kFloat32, cpu)};
  auto& t = o.all;
  Context& ctx = Context::current(cpu);
  if (relu) {
    kernels::batch_norm_relu_forward(ctx, x, w, b, t[3], t[4], training, 0.1, 1e-5, t[0], t[1],
                                     t[2]);
    kernels::batch_norm_relu_backward(ctx, x, dy, w, b, t[1], t[2], training, t[5], t[6], t[7]);
  } else {
    kernels::batch_norm_forward(ctx, x, w, b, t[3], t[4], training, 0.1, 1e-5, t[0], t[1], t[2]);
    kernels::batch_norm_backward(ctx, x, dy, w, t[1], t[2], training, t[5], t[6], t[7]);
  }
  return o;
}

// Bit for bit (NaN-safe: the bytes, not ==).
bool same_bits(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.data<float>(), b.data<float>(), a.nbytes()) == 0;
}

TEST(BatchNormCpuThreads, ResultsAreBitIdenticalOnOneThreadAndOnThePool) {
  // 128x3x9x9: two chunks per channel (101 runs of 81, then 27); 16x3x40x40: 25600 values per
  // channel, four chunks (the last partial); [20000, 5]: channels innermost, thirteen chunks of
  // rows.
  for (const Shape& s : {Shape{128, 3, 9, 9}, Shape{16, 3, 40, 40}, Shape{20000, 5}})
    for (bool relu : {false, true})
      for (bool training : {true, false}) {
        const Outputs pooled = run(s, relu, training);
        const Outputs inline_run = testing::on_one_thread([&] { return run(s, relu, training); });
        const std::string what = s.str() + (relu ? " relu" : "") + (training ? " train" : " eval");
        ASSERT_EQ(pooled.all.size(), inline_run.all.size());
        for (size_t i = 0; i < pooled.all.size(); ++i) {
          EXPECT_TRUE(same_bits(pooled.all[i], inline_run.all[i])) << what << " output #" << i;
          for (double v : testing::values(pooled.all[i]))
            ASSERT_TRUE(std::isfinite(v)) << what << " output #" << i << " left unwritten";
        }
      }
}

}  // namespace
}  // namespace cyclone
