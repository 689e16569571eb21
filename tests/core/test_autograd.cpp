// The autograd engine: recording, backward order, accumulation, no-grad, graph release, and the
// gradient checker itself.
#include <gtest/gtest.h>

#include "common/test_util.h"

namespace cyclone {
namespace {

Tensor leaf(std::vector<double> v, Shape s) {
  Tensor t = Tensor::from_vector<double>(v, s, Device::cpu());
  t.set_requires_grad();
  return t;
}

TEST(Autograd, ChainRuleThroughSharedSubexpressions) {
  // y = (x*x + x) * x  =>  dy/dx = 3x^2 + 2x, with x used by three nodes.
  Tensor x = leaf({1.5, -2.0, 0.25}, {3});
  Tensor y = (x * x + x) * x;
  y.backward(ones_like(y));
  const auto g = x.grad().to_vector<double>();
  for (int i = 0; i < 3; ++i) {
    const double v = x.data<double>()[i];
    EXPECT_DOUBLE_EQ(g[i], 3 * v * v + 2 * v);
  }
  EXPECT_TRUE(y.grad_fn() != nullptr);
  EXPECT_TRUE(x.is_leaf());
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = leaf({2.0}, {1});
  (x * 3.0).backward();
  (x * 4.0).backward();
  EXPECT_DOUBLE_EQ(x.grad().item(), 7.0);
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  (x * 5.0).backward();
  EXPECT_DOUBLE_EQ(x.grad().item(), 5.0);
}

TEST(Autograd, LeafGradDoesNotAliasAnotherGradient) {
  // add() passes the same gradient tensor to both inputs; a leaf's .grad must be its own copy,
  // or accumulating into one would change the other.
  Tensor a = leaf({1.0}, {1});
  Tensor b = leaf({1.0}, {1});
  (a + b).backward();
  EXPECT_FALSE(a.grad().same(b.grad()));
  EXPECT_NE(a.grad().raw_data(), b.grad().raw_data());
  (a * 2.0).backward();
  EXPECT_DOUBLE_EQ(a.grad().item(), 3.0);
  EXPECT_DOUBLE_EQ(b.grad().item(), 1.0);
}

TEST(Autograd, NoGradGuardRecordsNothing) {
  Tensor x = leaf({1.0, 2.0}, {2});
  {
    autograd::NoGradGuard guard;
    EXPECT_FALSE(autograd::grad_enabled());
    Tensor y = x * 2.0;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
  }
  EXPECT_TRUE(autograd::grad_enabled());
  EXPECT_TRUE((x * 2.0).requires_grad());
}

TEST(Autograd, DetachCutsTheGraphButSharesData) {
  Tensor x = leaf({3.0}, {1});
  Tensor d = (x * 2.0).detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  Tensor y = x * d;  // d is a constant here
  y.backward();
  EXPECT_DOUBLE_EQ(x.grad().item(), 6.0);
}

TEST(Autograd, GraphIsFreedAfterBackwardUnlessRetained) {
  Tensor x = leaf({1.0, 2.0}, {2});
  Tensor y = exp(x * 2.0);
  Tensor s = sum_to(y, {1});
  std::weak_ptr<TensorImpl> intermediate = y.grad_fn()->inputs()[0].impl_ptr();
  y = Tensor();  // only the graph holds the intermediate now
  EXPECT_FALSE(intermediate.expired());
  s.backward(Tensor(), /*retain_graph=*/true);
  EXPECT_FALSE(intermediate.expired()) << "retain_graph keeps saved tensors";
  s.backward();
  EXPECT_TRUE(intermediate.expired()) << "backward must release the graph's saved tensors";
  try {
    s.backward();
    FAIL() << "a second backward through a freed graph must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("retain_graph"), std::string::npos) << e.what();
  }
  // d/dx sum(exp(2x)) = 2 exp(2x), accumulated twice.
  const auto g = x.grad().to_vector<double>();
  EXPECT_NEAR(g[0], 2 * 2 * std::exp(2.0), 1e-12);
  EXPECT_NEAR(g[1], 2 * 2 * std::exp(4.0), 1e-12);
}

TEST(Autograd, ErrorsAreClear) {
  Tensor c = Tensor::from_vector<double>({1.0, 2.0}, {2}, Device::cpu());
  EXPECT_THROW(c.backward(), Error);  // nothing requires grad
  Tensor x = leaf({1.0, 2.0}, {2});
  try {
    (x * 2.0).backward();  // not a scalar and no gradient given
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[2]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Tensor::zeros({2}, DType::kInt32, Device::cpu()).set_requires_grad(), Error);
}

// A tensor the forward pass used, changed in place before backward: its gradient would be
// computed from the new values (2x with x = 3: 6 where 2 was due) without a word, as a library
// bug hunt found; now backward refuses, naming the op. A change after backward is fine.
TEST(Autograd, AnInputChangedInPlaceBeforeBackwardIsRefused) {
  Tensor w = leaf({1, 1, 1}, {3});
  Tensor loss = sum(w * w);
  {
    autograd::NoGradGuard g;
    w.copy_from(Tensor::from_vector<double>({3, 3, 3}, {3}, Device::cpu()));
  }
  testing::expect_error([&] { loss.backward(); },
                        {"input 0", "changed in place after the forward pass", "clone()"});
  Tensor v = leaf({1, 2}, {2});
  Tensor l2 = sum(v * v);
  v.zero_();
  EXPECT_THROW(l2.backward(), Error);
  // After backward, in place is what an optimizer does: allowed, and the next graph is fresh.
  Tensor u = leaf({1, 2}, {2});
  Tensor l3 = sum(u * u);
  l3.backward();
  EXPECT_EQ(u.grad().to_vector<double>(), (std::vector<double>{2, 4}));
  u.copy_from(Tensor::from_vector<double>({5, 5}, {2}, Device::cpu()));
  u.zero_grad();
  sum(u * u).backward();
  EXPECT_EQ(u.grad().to_vector<double>(), (std::vector<double>{10, 10}));
  // An optimizer step between forward and backward is the same mistake.
  Tensor p = leaf({2}, {1});
  Tensor l4 = sum(p * p);
  p.mark_modified();  // what Optimizer::step does to each parameter it updates
  EXPECT_THROW(l4.backward(), Error);
}

TEST(Autograd, DeepChainsDoNotOverflowTheStack) {
  Tensor x = leaf({1.0}, {1});
  Tensor y = x;
  for (int i = 0; i < 20000; ++i) y = y + 0.0;
  y.backward();
  EXPECT_DOUBLE_EQ(x.grad().item(), 1.0);
}

TEST(GradCheck, AcceptsCorrectAndRejectsWrongGradients) {
  Tensor x = leaf(testing::random_values(6, 1), {2, 3});
  auto good = gradcheck([](const std::vector<Tensor>& in) { return in[0] * in[0]; }, {x});
  EXPECT_TRUE(good.ok) << good.message;
  EXPECT_EQ(good.checked, 6);
  // An op whose recorded backward is wrong by a factor of 2 must be caught.
  auto wrong = [](const std::vector<Tensor>& in) {
    const Tensor& a = in[0];
    Tensor out = apply(kernels::UnaryOp::kSquare, a);
    return autograd::record(out, "bad_square", {a},
                            [a](const Tensor& g, const Tensor&) -> std::vector<Tensor> {
                              return {g * a};  // should be 2*g*a
                            });
  };
  auto bad = gradcheck(wrong, {x});
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.message.find("analytic"), std::string::npos);
}

TEST(GradCheck, SkipsKinks) {
  // relu at exactly 0 has no derivative: the checker must skip it, not fail.
  Tensor x = leaf({-1.0, 0.0, 2.0}, {3});
  auto r = gradcheck([](const std::vector<Tensor>& in) { return relu(in[0]); }, {x});
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.skipped_kinks, 1);
  EXPECT_EQ(r.checked, 2);
}

TEST(GradCheck, NeedsFloat64CpuInputs) {
  Tensor f = Tensor::zeros({2}, DType::kFloat32, Device::cpu());
  EXPECT_THROW(gradcheck([](const std::vector<Tensor>& in) { return in[0]; }, {f}), Error);
}

}  // namespace
}  // namespace cyclone
