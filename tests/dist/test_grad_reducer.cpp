// GradReducer: bucketed gradient averaging, in any world (alone, or under mpirun -np 2).
#include <gtest/gtest.h>

#include "cyclone/core/autograd.h"
#include "cyclone/dist/grad_reducer.h"
#include "cyclone/dist/world.h"
#include "cyclone/layers/ops.h"
#include "cyclone/layers/reduce_ops.h"

namespace cyclone::dist {
namespace {

Tensor param(int64_t n) {
  Tensor t = Tensor::zeros(Shape{n}, DType::kFloat32, Device::cpu());
  t.set_requires_grad(true);
  return t;
}

void set_grad(const Tensor& p, double base) {
  Tensor g = Tensor::empty(p.shape(), DType::kFloat32, Device::cpu());
  for (int64_t i = 0; i < p.numel(); ++i) g.data<float>()[i] = static_cast<float>(base + i);
  p.set_grad(g);
}

// Parameters of 5 sizes, bucket cap of 64 floats: 3+ buckets, one parameter above the cap.
TEST(GradReducer, AveragesEveryParameterOverTheRanks) {
  World& w = world();
  std::vector<Tensor> ps = {param(10), param(70), param(3), param(40), param(1)};
  GradReducer red(w.host(), ps, 64 * 4);
  EXPECT_GE(red.num_buckets(), 3);
  for (int pass = 0; pass < 2; ++pass) {  // the buckets are reused pass after pass
    for (size_t k = 0; k < ps.size(); ++k) set_grad(ps[k], 100.0 * k + w.rank() + pass);
    red.prepare();
    for (int k = static_cast<int>(ps.size()) - 1; k >= 0; --k) red.mark_ready(ps[k]);
    red.finish();
    const double mean_rank = (w.size() - 1) / 2.0;
    for (size_t k = 0; k < ps.size(); ++k)
      for (int64_t i = 0; i < ps[k].numel(); ++i)
        ASSERT_NEAR(ps[k].grad().data<float>()[i], 100.0 * k + mean_rank + pass + i, 1e-4)
            << "parameter " << k << " element " << i << " pass " << pass;
  }
}

// Backward produces the last layer's gradients first; buckets in reverse registration order are
// started while backward still runs (here: all but the one holding the first parameter).
TEST(GradReducer, StartsBucketsDuringBackward) {
  World& w = world();
  Tensor a = param(8), b = param(8), c = param(8);
  GradReducer red(w.host(), {a, b, c}, 8 * 4);  // one parameter per bucket
  ASSERT_EQ(red.num_buckets(), 3);
  Tensor x = Tensor::from_vector(std::vector<float>(8, 1.0f + w.rank()), Shape{8}, Device::cpu());
  // loss = sum(((x * a) * b) * c): c's gradient is ready first, a's last.
  red.prepare();
  {
    autograd::GradReadyHook hook([&](const Tensor& leaf) { red.mark_ready(leaf); });
    sum(((x * a + 1.0) * b + 1.0) * c).backward();
  }
  EXPECT_GE(red.launched_early(), 2);
  red.finish();
  // d/dc = (x a + 1) b + 1 = 1 at a = b = 0, the same on every rank.
  EXPECT_FLOAT_EQ(c.grad().data<float>()[0], 1.0f);
  // d/da = x b c = 0.
  EXPECT_FLOAT_EQ(a.grad().data<float>()[7], 0.0f);
}

// A parameter this pass did not use still gets the mean (zero here, or the others' gradient);
// a frozen one is left alone, and its bucket does not hold the others back.
TEST(GradReducer, UnusedAndFrozenParameters) {
  World& w = world();
  Tensor used = param(4), unused = param(4), frozen = param(4);
  frozen.set_requires_grad(false);
  GradReducer red(w.host(), {frozen, unused, used}, 4 * 4);
  set_grad(used, 1.0);
  // Only rank 0 has a gradient for `unused`: the mean is that gradient / ranks.
  if (w.rank() == 0) set_grad(unused, 2.0);
  red.prepare();
  red.mark_ready(used);
  red.finish();
  ASSERT_TRUE(unused.grad().defined());
  EXPECT_NEAR(unused.grad().data<float>()[1], 3.0 / w.size(), 1e-6);
  EXPECT_NEAR(used.grad().data<float>()[3], 4.0, 1e-6);
  EXPECT_FALSE(frozen.grad().defined());
}

TEST(GradReducer, RejectsWhatItCannotReduce) {
  World& w = world();
  Tensor p = param(3);
  EXPECT_THROW(GradReducer(w.host(), {p, p}), Error);  // listed twice
  EXPECT_THROW(GradReducer(w.host(), {p}, 0), Error);
  GradReducer red(w.host(), {p});
  EXPECT_THROW(red.finish(), Error);  // finish without prepare
  EXPECT_TRUE(red.serves({p}));
  EXPECT_FALSE(red.serves({param(3)}));
}

}  // namespace
}  // namespace cyclone::dist
