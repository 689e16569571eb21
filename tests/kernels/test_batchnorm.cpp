// Batch-norm kernels against naive double loops (train and eval, NC and NCHW, with and without
// affine and running stats, with and without the fused ReLU, NaN-prefilled outputs), the
// running-stat update, determinism, errors, and CPU-vs-CUDA parity (kernels/cpu/batchnorm.cpp
// against kernels/cuda/batchnorm.cu).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "common/test_util.h"

namespace cyclone {
namespace {

using testing::DeviceTest;

// The reference: PyTorch's native_batch_norm semantics in plain double loops.
struct RefBn {
  std::vector<double> y, mean, invstd, running_mean, running_var;
  std::vector<double> dx, dweight, dbias;
};

RefBn ref_batch_norm(const std::vector<double>& x, const Shape& s, const std::vector<double>& w,
                     const std::vector<double>& b, std::vector<double> rm, std::vector<double> rv,
                     bool training, double momentum, double eps, const std::vector<double>& dy,
                     bool relu = false) {
  const int64_t N = s[0], C = s[1], inner = s.prod(2, s.rank()), M = N * inner;
  auto at = [&](int64_t n, int64_t c, int64_t i) { return (n * C + c) * inner + i; };
  RefBn r;
  r.y.resize(x.size());
  r.dx.resize(x.size());
  r.mean.resize(C);
  r.invstd.resize(C);
  r.dweight.resize(C);
  r.dbias.resize(C);
  for (int64_t c = 0; c < C; ++c) {
    double mean = 0, var = 0;
    if (training) {
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < inner; ++i) mean += x[at(n, c, i)];
      mean /= M;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < inner; ++i)
          var += (x[at(n, c, i)] - mean) * (x[at(n, c, i)] - mean);
      var /= M;
      if (!rm.empty()) {
        rm[c] = (1 - momentum) * rm[c] + momentum * mean;
        rv[c] = (1 - momentum) * rv[c] + momentum * var * M / (M - 1);
      }
    } else {
      mean = rm[c];
      var = rv[c];
    }
    const double invstd = 1 / std::sqrt(var + eps);
    const double wc = w.empty() ? 1.0 : w[c], bc = b.empty() ? 0.0 : b[c];
    r.mean[c] = mean;
    r.invstd[c] = invstd;
    // The fused ReLU: y = max(pre, 0), and dy counts only where pre > 0.
    auto grad = [&](int64_t o) {
      return !relu || wc * (x[o] - mean) * invstd + bc > 0 ? dy[o] : 0.0;
    };
    double sdy = 0, sdyx = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < inner; ++i) {
        const double xh = (x[at(n, c, i)] - mean) * invstd;
        const double pre = wc * xh + bc;
        r.y[at(n, c, i)] = relu ? std::max(pre, 0.0) : pre;
        sdy += grad(at(n, c, i));
        sdyx += grad(at(n, c, i)) * xh;
      }
    r.dbias[c] = sdy;
    r.dweight[c] = sdyx;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < inner; ++i) {
        const double xh = (x[at(n, c, i)] - mean) * invstd;
        const double g = grad(at(n, c, i));
        r.dx[at(n, c, i)] =
            training ? wc * invstd * (g - sdy / M - xh * sdyx / M) : wc * invstd * g;
      }
  }
  r.running_mean = rm;
  r.running_var = rv;
  return r;
}

struct Case {
  Shape shape;
  bool training, affine, track;
  bool relu = false;  // the fused batch_norm_relu_* kernels
};

std::vector<Case> cases() {
  std::vector<Case> out;
  for (Shape s :
       {Shape{7, 3}, Shape{4, 5, 3, 3}, Shape{2, 3, 1, 31}, Shape{1, 2, 33, 33}, Shape{3, 1, 5}})
    for (bool training : {true, false})
      for (bool affine : {true, false})
        for (bool relu : {false, true}) out.push_back({s, training, affine, true, relu});
  out.push_back({Shape{6, 4, 2, 2}, true, true, false});  // track_running_stats=False
  return out;
}

// The inputs of a case, on the CPU, from fixed seeds. bfloat16 / float16 x: the per-channel
// tensors are float32 (mixed precision).
//
// Fused ReLU: dy is 0 wherever the pre-activation lies within kKinkMargin of 0. There the mask is
// decided by rounding (CPU in double, CUDA in float, each from its own saved statistics: the two
// pre-activations differ by a few 1e-7; the [128, 16, 32, 32] float32 data has one at 8.7e-7),
// and one flipped element would fail dx, dweight and dbias. With dy = 0 no result depends on the
// mask there, while every other element still checks it. `cleared` counts them (~1e-5 of the
// elements), so a test can see that the check was not hollowed out.
constexpr double kKinkMargin = 1e-5;

struct BnInputs {
  Tensor x, dy, w, b, rm, rv;
  int64_t cleared = 0;
};

BnInputs make_inputs(const Case& c, DType xt) {
  const int64_t C = c.shape[1];
  const DType dt = math_dtype(xt);
  const Device cpu = Device::cpu();
  BnInputs in;
  // An offset mean (3) exercises the cancellation the kernels must avoid.
  in.x = testing::random_tensor(c.shape, 11, xt, cpu, 1, 5);
  in.dy = testing::random_tensor(c.shape, 12, xt, cpu, -1, 1);
  if (c.affine) {
    in.w = testing::random_tensor({C}, 13, dt, cpu, 0.5, 1.5);
    in.b = testing::random_tensor({C}, 14, dt, cpu, -1, 1);
  }
  if (c.track) {
    in.rm = testing::random_tensor({C}, 15, dt, cpu, 2, 4);
    in.rv = testing::random_tensor({C}, 16, dt, cpu, 0.5, 2);
  }
  if (!c.relu) return in;
  const auto x = testing::values(in.x);
  const std::vector<double> none;
  const auto w = c.affine ? testing::values(in.w) : none,
             b = c.affine ? testing::values(in.b) : none;
  const auto rm = c.track ? testing::values(in.rm) : none,
             rv = c.track ? testing::values(in.rv) : none;
  const RefBn stats = ref_batch_norm(x, c.shape, w, b, rm, rv, c.training, 0.1, 1e-5,
                                     std::vector<double>(x.size(), 0.0));
  auto dy = testing::values(in.dy);
  const int64_t inner = c.shape.prod(2, c.shape.rank());
  for (size_t o = 0; o < x.size(); ++o) {
    const int64_t ch = static_cast<int64_t>(o) / inner % C;
    const double pre = (w.empty() ? 1.0 : w[ch]) * (x[o] - stats.mean[ch]) * stats.invstd[ch] +
                       (b.empty() ? 0.0 : b[ch]);
    if (std::abs(pre) < kKinkMargin && dy[o] != 0) {
      dy[o] = 0;
      ++in.cleared;
    }
  }
  if (in.cleared > 0) in.dy = cast(Tensor::from_vector<double>(dy, c.shape, cpu), xt);
  return in;
}

// Runs the kernels on `dev` in dtype xt; returns {y, save_mean, save_invstd, running_mean,
// running_var, dx, dweight, dbias} on the host.
std::vector<Tensor> run_bn(const Case& c, DType xt, Device dev) {
  const int64_t C = c.shape[1];
  const DType dt = math_dtype(xt);
  const BnInputs in = make_inputs(c, xt);
  auto on_dev = [&](const Tensor& t) { return t.defined() ? t.to(dev) : Tensor(); };
  Tensor x = on_dev(in.x), dy = on_dev(in.dy), w = on_dev(in.w), b = on_dev(in.b);
  Tensor rm = on_dev(in.rm), rv = on_dev(in.rv);
  Tensor y = testing::nan_tensor(c.shape, xt, dev);
  Tensor sm = testing::nan_tensor({C}, dt, dev), si = testing::nan_tensor({C}, dt, dev);
  Context& ctx = Context::current(dev);
  Tensor dx = testing::nan_tensor(c.shape, xt, dev);
  Tensor dw = testing::nan_tensor({C}, dt, dev), db = testing::nan_tensor({C}, dt, dev);
  if (c.relu) {
    kernels::batch_norm_relu_forward(ctx, x, w, b, rm, rv, c.training, 0.1, 1e-5, y, sm, si);
    kernels::batch_norm_relu_backward(ctx, x, dy, w, b, sm, si, c.training, dx, dw, db);
  } else {
    kernels::batch_norm_forward(ctx, x, w, b, rm, rv, c.training, 0.1, 1e-5, y, sm, si);
    kernels::batch_norm_backward(ctx, x, dy, w, sm, si, c.training, dx, dw, db);
  }
  return {y.to(Device::cpu()),
          sm.to(Device::cpu()),
          si.to(Device::cpu()),
          c.track ? rm.to(Device::cpu()) : Tensor(),
          c.track ? rv.to(Device::cpu()) : Tensor(),
          dx.to(Device::cpu()),
          dw.to(Device::cpu()),
          db.to(Device::cpu())};
}

std::string describe(const Case& c, DType dt) {
  std::ostringstream os;
  os << c.shape << (c.training ? " train" : " eval") << (c.affine ? " affine" : "")
     << (c.track ? "" : " untracked") << (c.relu ? " relu" : "") << " " << dtype_name(dt);
  return os.str();
}

// cases() plus shapes the CPU sums cut into several chunks (kernels/cpu/batchnorm_chunks.h),
// merged in order: runs longer than a chunk (cut mid-run), a partial last chunk, channels
// innermost over many rows, and more channels than a chunk's values.
std::vector<Case> cpu_cases() {
  std::vector<Case> all = cases();
  for (Shape s : {Shape{2, 2, 100, 100}, Shape{16, 3, 40, 40}, Shape{20000, 5}, Shape{40, 9000}})
    for (bool relu : {false, true}) all.push_back({s, true, true, true, relu});
  return all;
}

TEST(BatchNormCpu, MatchesNaiveDoubleLoops) {
  for (DType dt : {DType::kFloat64, DType::kFloat32, DType::kBFloat16, DType::kFloat16}) {
    for (const Case& c : cpu_cases()) {
      const auto got = run_bn(c, dt, Device::cpu());
      // The reference reads the values the kernels read: bfloat16 x and dy as rounded, the
      // per-channel tensors float32.
      const BnInputs in = make_inputs(c, dt);
      auto vals = [](const Tensor& t) {
        return t.defined() ? testing::values(t) : std::vector<double>{};
      };
      const auto x = vals(in.x), dy = vals(in.dy), w = vals(in.w), b = vals(in.b);
      const auto rm = vals(in.rm), rv = vals(in.rv);
      const RefBn r = ref_batch_norm(x, c.shape, w, b, rm, rv, c.training, 0.1, 1e-5, dy, c.relu);
      const double tol = dt == DType::kFloat64 ? 1e-12 : 2e-5;
      // y and dx are rounded to bfloat16 once (half an ulp, 2^-9 relative); the rest is float32.
      // (float16: 2^-11, bounded by 2^-10).
      const double out_tol = dt == DType::kBFloat16 ? 0x1p-8 : is_half(dt) ? 0x1p-10 : tol;
      const std::string what = describe(c, dt);
      EXPECT_TRUE(testing::all_close(testing::values(got[0]), r.y, out_tol, tol)) << what << " y";
      EXPECT_TRUE(testing::all_close(testing::values(got[1]), r.mean, tol, tol)) << what;
      EXPECT_TRUE(testing::all_close(testing::values(got[2]), r.invstd, tol, tol)) << what;
      if (c.track) {
        EXPECT_TRUE(testing::all_close(testing::values(got[3]), r.running_mean, tol, tol))
            << what << " running_mean";
        EXPECT_TRUE(testing::all_close(testing::values(got[4]), r.running_var, tol, tol))
            << what << " running_var";
      }
      EXPECT_TRUE(testing::all_close(testing::values(got[5]), r.dx, out_tol, tol)) << what << " dx";
      EXPECT_TRUE(testing::all_close(testing::values(got[6]), r.dweight, tol, tol)) << what;
      EXPECT_TRUE(testing::all_close(testing::values(got[7]), r.dbias, tol, tol)) << what;
    }
  }
}

TEST(BatchNormCpu, RunningStatsFollowPyTorchsUpdate) {
  // Channel 0 holds {1, 2, 3, 6}: mean 3, biased var 3.5, unbiased var 14/3.
  Tensor x = Tensor::from_vector<double>({1, 10, 2, 20, 3, 30, 6, 60}, {4, 2}, Device::cpu());
  Tensor rm = Tensor::from_vector<double>({0, 0}, {2}, Device::cpu());
  Tensor rv = Tensor::from_vector<double>({1, 1}, {2}, Device::cpu());
  Tensor y = Tensor::empty({4, 2}, DType::kFloat64, Device::cpu());
  Tensor sm = Tensor::empty({2}, DType::kFloat64, Device::cpu());
  Tensor si = Tensor::empty({2}, DType::kFloat64, Device::cpu());
  Context& ctx = Context::current(Device::cpu());
  kernels::batch_norm_forward(ctx, x, Tensor(), Tensor(), rm, rv, true, 0.1, 0.0, y, sm, si);
  EXPECT_DOUBLE_EQ(rm.to_vector<double>()[0], 0.3);
  EXPECT_DOUBLE_EQ(rv.to_vector<double>()[0], 0.9 + 0.1 * 14.0 / 3.0);
  EXPECT_DOUBLE_EQ(rm.to_vector<double>()[1], 3.0);
  EXPECT_DOUBLE_EQ(sm.to_vector<double>()[0], 3.0);
  EXPECT_DOUBLE_EQ(si.to_vector<double>()[0], 1 / std::sqrt(3.5));
  // A second step moves the running stats again (momentum compounds).
  kernels::batch_norm_forward(ctx, x, Tensor(), Tensor(), rm, rv, true, 0.1, 0.0, y, sm, si);
  EXPECT_DOUBLE_EQ(rm.to_vector<double>()[0], 0.9 * 0.3 + 0.3);
  // momentum 0 leaves them alone; eval never touches them.
  kernels::batch_norm_forward(ctx, x, Tensor(), Tensor(), rm, rv, true, 0.0, 0.0, y, sm, si);
  kernels::batch_norm_forward(ctx, x, Tensor(), Tensor(), rm, rv, false, 0.5, 0.0, y, sm, si);
  EXPECT_DOUBLE_EQ(rm.to_vector<double>()[0], 0.9 * 0.3 + 0.3);
}

TEST(BatchNormCpu, IsDeterministicAndAccurateForLargeOffsetMeans) {
  // float32 values around 1e4 with unit spread: a naive E[x^2] - E[x]^2 in float would lose
  // every digit of the variance.
  const Shape s{64, 3, 16, 16};
  Tensor x = testing::random_tensor(s, 21, DType::kFloat64, Device::cpu(), 1e4 - 1.7, 1e4 + 1.7);
  Tensor xf = cast(x, DType::kFloat32);
  Context& ctx = Context::current(Device::cpu());
  auto stats = [&](const Tensor& in) {
    Tensor y = Tensor::empty(s, in.dtype(), Device::cpu());
    Tensor sm = Tensor::empty({3}, in.dtype(), Device::cpu());
    Tensor si = Tensor::empty({3}, in.dtype(), Device::cpu());
    kernels::batch_norm_forward(ctx, in, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5, y,
                                sm, si);
    return std::vector<Tensor>{y, sm, si};
  };
  const auto a = stats(xf), b = stats(xf), ref = stats(cast(xf, DType::kFloat64));
  EXPECT_EQ(a[0].to_vector<float>(), b[0].to_vector<float>());
  EXPECT_TRUE(testing::all_close(a[2], cast(ref[2], DType::kFloat32), 1e-6, 0));
}

TEST(BatchNormErrors, NameTheProblem) {
  Context& ctx = Context::current(Device::cpu());
  auto f = [](const Shape& s) { return Tensor::zeros(s, DType::kFloat32, Device::cpu()); };
  Tensor x = f({4, 3, 2, 2}), y = f({4, 3, 2, 2}), c3 = f({3}), c4 = f({4});
  // One value per channel cannot be normalised in training mode (PyTorch refuses too).
  Tensor x1 = f({1, 3}), y1 = f({1, 3});
  EXPECT_THROW(kernels::batch_norm_forward(ctx, x1, c3, c3, c3, c3, true, 0.1, 1e-5, y1, c3, c3),
               Error);
  EXPECT_NO_THROW(
      kernels::batch_norm_forward(ctx, x1, c3, c3, c3, c3, false, 0.1, 1e-5, y1, c3, c3));
  try {
    kernels::batch_norm_forward(ctx, x, c4, c3, c3, c3, true, 0.1, 1e-5, y, c3, c3);
    FAIL();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("weight"), std::string::npos) << m;
    EXPECT_NE(m.find("[4]"), std::string::npos) << m;
  }
  // Eval needs running stats; both or neither; sane momentum / eps; float dtypes; rank >= 2.
  EXPECT_THROW(
      kernels::batch_norm_forward(ctx, x, c3, c3, Tensor(), Tensor(), false, 0.1, 1e-5, y, c3, c3),
      Error);
  EXPECT_THROW(
      kernels::batch_norm_forward(ctx, x, c3, c3, c3, Tensor(), true, 0.1, 1e-5, y, c3, c3), Error);
  EXPECT_THROW(kernels::batch_norm_forward(ctx, x, c3, c3, c3, c3, true, 1.5, 1e-5, y, c3, c3),
               Error);
  EXPECT_THROW(kernels::batch_norm_forward(ctx, x, c3, c3, c3, c3, true, 0.1, -1, y, c3, c3),
               Error);
  Tensor xi = Tensor::zeros({4, 3}, DType::kInt32, Device::cpu());
  EXPECT_THROW(kernels::batch_norm_forward(ctx, xi, c3, c3, c3, c3, true, 0.1, 1e-5, xi, c3, c3),
               Error);
  Tensor v = f({5});
  EXPECT_THROW(kernels::batch_norm_forward(ctx, v, c3, c3, c3, c3, true, 0.1, 1e-5, v, c3, c3),
               Error);
  Tensor d = Tensor::zeros({3}, DType::kFloat64, Device::cpu());
  EXPECT_THROW(kernels::batch_norm_backward(ctx, x, y, d, c3, c3, true, y, c3, c3), Error);
  // The fused backward reads the forward's bias: it must fit too, and the error says which.
  testing::expect_error(
      [&] { kernels::batch_norm_relu_backward(ctx, x, y, c3, c4, c3, c3, true, y, c3, c3); },
      {"batch_norm_relu_backward", "bias", "[4]"});
  kernels::batch_norm_relu_backward(ctx, x, y, c3, Tensor(), c3, c3, true, y, c3, c3);
}

// ---- CPU vs CUDA parity (runs wherever a GPU is usable) ----

constexpr DType kParityDtypes[] = {DType::kFloat32, DType::kFloat64, DType::kBFloat16,
                                   DType::kFloat16};

std::vector<Case> parity_cases() {
  std::vector<Case> all = cases();
  all.push_back({Shape{128, 16, 32, 32}, true, true, true});  // many blocks per channel
  all.push_back({Shape{256, 640}, true, true, true});         // wide NC
  // Channels-last activations seen as [N H W, C]: the channels-innermost sums, with many row
  // parts and a channel count that is not a multiple of the 32-channel tile.
  all.push_back({Shape{8 * 16 * 16, 160}, true, true, true});
  all.push_back({Shape{4096, 100}, true, true, true});
  all.push_back({Shape{128, 16, 32, 32}, true, true, true, true});  // fused ReLU, both layouts
  all.push_back({Shape{8 * 16 * 16, 160}, true, true, true, true});
  // The channels-innermost elementwise passes keep a thread on one set of channels for its whole
  // grid-stride loop: more packs than the largest grid has threads (float32 and float64 loop), and
  // a prime channel count too large for that grid (the generic kernels run).
  all.push_back({Shape{32768, 160}, true, true, true});
  all.push_back({Shape{16, 4999}, true, true, true, true});
  // cases() has no shape whose channel (NCHW) or row (channels innermost) splits into 16-byte
  // packs: eval mode, no affine and the fused ReLU on the vectorised kernels, both layouts.
  for (Shape s : {Shape{6, 4, 4, 4}, Shape{64, 32}})
    for (bool relu : {false, true}) {
      for (bool affine : {true, false}) all.push_back({s, false, affine, true, relu});
      all.push_back({s, true, false, true, relu});
    }
  // Channels innermost with packs but a grid too small for a whole number of rows (row_v / gcd >
  // the grid cap): the generic kernels with V > 1 (8 * 4999 channels).
  all.push_back({Shape{4, 39992}, true, true, true, true});
  // Rows wider than 128 packs cut into 32-pack tiles, the last one partly idle (float32: 150
  // packs), with the fused ReLU.
  all.push_back({Shape{256, 600}, true, true, true, true});
  // More elements than the largest grid has threads, V = 1 (inner 2601): the NCHW elementwise
  // passes loop.
  all.push_back({Shape{128, 4, 51, 51}, true, true, true, true});
  return all;
}

// The parity test's fused-ReLU inputs, against the CUDA backward's mask emulated on the host:
// statistics rounded to P = float (each device rounds its own double sums; one float ulp apart at
// worst, emulated as both neighbours), the pre-activation in float with and without the fused
// multiply-add nvcc may contract it to. Wherever dy is nonzero that mask must equal the CPU
// kernel's (double) one, else the first GPU run fails MatchesTheCpu on one element for no fault
// of the kernels.
TEST(BatchNormCpu, ParityInputsKeepDyOffTheReluKink) {
  for (DType dt : {DType::kFloat32, DType::kBFloat16, DType::kFloat16}) {
    for (const Case& c : parity_cases()) {
      if (!c.relu) continue;
      const BnInputs in = make_inputs(c, dt);
      const int64_t C = c.shape[1], inner = c.shape.prod(2, c.shape.rank());
      const auto got = run_bn(c, dt, Device::cpu());  // the CPU kernel's saved statistics
      const auto x = testing::values(in.x), dy = testing::values(in.dy);
      const auto mean = testing::values(got[1]), invstd = testing::values(got[2]);
      const auto w = c.affine ? testing::values(in.w) : std::vector<double>(C, 1.0);
      const auto b = c.affine ? testing::values(in.b) : std::vector<double>(C, 0.0);
      // f rounded to float, then moved `dir` ulps (-1, 0, 1).
      auto nudged = [](double f, int dir) {
        const float v = static_cast<float>(f);
        return dir == 0 ? v : std::nextafter(v, dir < 0 ? -INFINITY : INFINITY);
      };
      int64_t disagree = 0;
      for (size_t o = 0; o < x.size(); ++o) {
        if (dy[o] == 0) continue;
        const int64_t ch = static_cast<int64_t>(o) / inner % C;
        const double cpu_pre = (x[o] - mean[ch]) * (invstd[ch] * w[ch]) + b[ch];
        const float xf = static_cast<float>(x[o]), sh = static_cast<float>(b[ch]);
        for (int dm : {-1, 0, 1})
          for (int di : {-1, 0, 1}) {
            const float m = nudged(mean[ch], dm), scale = nudged(invstd[ch], di) * float(w[ch]);
            for (float pre : {(xf - m) * scale + sh, std::fma(xf - m, scale, sh)})
              if ((pre > 0) != (cpu_pre > 0)) ++disagree;
          }
      }
      EXPECT_EQ(disagree, 0) << describe(c, dt);
    }
  }
}

class BatchNormParity : public DeviceTest {};

// An optional output of a kernel: an aligned tensor, a view one element into a larger buffer (not
// 16-byte aligned: CUDA's kernels take their one-element path for it), or none.
enum class BnOutput { kAligned, kOddOffset, kNone };
Tensor optional_output(BnOutput out, const Shape& s, DType dt, Device device) {
  if (out == BnOutput::kAligned) return Tensor::empty(s, dt, device);
  if (out == BnOutput::kOddOffset)
    return Tensor::empty({s.numel() + 1}, dt, device).slice(1, s.numel() + 1).reshape(s);
  return Tensor();
}
// run(out) returns tensors that must not depend on how the optional output is given: each is
// compared bit for bit with run(BnOutput::kAligned)'s.
template <class Run>
void expect_same_bits_whatever_the_output(Run run, const std::string& what) {
  const std::vector<Tensor> aligned = run(BnOutput::kAligned);
  for (BnOutput other : {BnOutput::kNone, BnOutput::kOddOffset}) {
    const std::vector<Tensor> got = run(other);
    for (size_t i = 0; i < aligned.size(); ++i)
      EXPECT_EQ(testing::values(got[i]), testing::values(aligned[i]))
          << what << " #" << i << (other == BnOutput::kNone ? " not written" : " at an odd offset");
  }
}

TEST_P(BatchNormParity, MatchesTheCpu) {
  for (DType dt : kParityDtypes) {
    for (const Case& c : parity_cases()) {
      if (c.relu) {
        // The inputs keep dy off the ReLU's kink in only a few elements (make_inputs).
        const int64_t cleared = make_inputs(c, dt).cleared;
        EXPECT_LE(cleared, c.shape.numel() / 10000 + 1) << describe(c, dt);
      }
      const auto cpu = run_bn(c, dt, Device::cpu());
      const auto dev = run_bn(c, dt, device());
      const double tol = dt == DType::kFloat64 ? 1e-11 : 1e-4;
      for (size_t i = 0; i < cpu.size(); ++i) {
        if (!cpu[i].defined()) continue;
        // bfloat16 y and dx (#0, #5): the CPU rounds a double, CUDA a float: one ulp apart at most.
        const bool rounded = is_half(dt) && (i == 0 || i == 5);
        const double ulp = dt == DType::kBFloat16 ? 0x1p-7 : 0x1p-10;
        EXPECT_TRUE(testing::all_close(dev[i], cpu[i], rounded ? ulp : tol, tol))
            << describe(c, dt) << " #" << i;
      }
    }
  }
}

TEST_P(BatchNormParity, IsDeterministicRunToRun) {
  for (const Case& c : {Case{Shape{64, 8, 17, 17}, true, true, true},
                        Case{Shape{2048, 96}, true, true, true}}) {  // channels innermost too
    const auto a = run_bn(c, DType::kFloat32, device());
    const auto b = run_bn(c, DType::kFloat32, device());
    for (size_t i = 0; i < a.size(); ++i)
      EXPECT_EQ(a[i].to_vector<float>(), b[i].to_vector<float>())
          << describe(c, DType::kFloat32) << " #" << i;
  }
}

// A NaN, or an inf, in a channel makes its batch variance NaN on the CPU (inf - inf in the
// deviations); CUDA's clamp of the variance at 0 must keep that NaN rather than report a finite
// invstd and running_var. Both layouts (NCHW and channels innermost), the bad value away from
// element 0 (the CUDA kernels' shift), and an untouched channel beside it.
TEST_P(BatchNormParity, NonFiniteValuesPoisonTheirChannelsStatistics) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (Shape s : {Shape{4, 3, 2, 2}, Shape{40, 3}}) {
    std::vector<double> v = testing::random_values(s.numel(), 31, 1, 5);
    const int64_t inner = s.prod(2, s.rank());
    v[static_cast<size_t>((2 * 3 + 1) * inner)] = nan;  // channel 1, n = 2
    v[static_cast<size_t>((3 * 3 + 2) * inner)] = inf;  // channel 2, n = 3
    Context& ctx = Context::current(device());
    const Tensor x = Tensor::from_vector<float>({v.begin(), v.end()}, s, device());
    const Tensor y = testing::nan_tensor(s, DType::kFloat32, device());
    const Tensor rm = Tensor::zeros({3}, DType::kFloat32, device());
    const Tensor rv = Tensor::from_vector<float>({1, 1, 1}, {3}, device());
    const Tensor sm = testing::nan_tensor({3}, DType::kFloat32, device());
    const Tensor si = testing::nan_tensor({3}, DType::kFloat32, device());
    kernels::batch_norm_forward(ctx, x, Tensor(), Tensor(), rm, rv, true, 0.1, 1e-5, y, sm, si);
    const auto invstd = testing::values(si), var = testing::values(rv);
    EXPECT_TRUE(std::isfinite(invstd[0]) && std::isfinite(var[0])) << s << " clean channel";
    for (int c : {1, 2}) {
      EXPECT_TRUE(std::isnan(invstd[c])) << s << " channel " << c << ": invstd " << invstd[c];
      EXPECT_TRUE(std::isnan(var[c])) << s << " channel " << c << ": running_var " << var[c];
    }
  }
}

// Training mode without y: the statistics alone, the same bits as with y (save_mean, save_invstd
// and the running update), nothing else written; also the same bits when y is a view at an odd
// offset (CUDA: the sums' vector width comes from x alone, not from y's alignment). Eval mode, or
// the fused ReLU, still needs y.
TEST_P(BatchNormParity, StatisticsAloneWithoutY) {
  Context& ctx = Context::current(device());
  for (Shape s : {Shape{64, 8, 17, 17}, Shape{2048, 96}})
    for (DType dt : {DType::kFloat32, DType::kBFloat16}) {
      const DType pt = math_dtype(dt);
      const int64_t C = s[1];
      const Tensor x = testing::random_tensor(s, 71, dt, device(), -1, 3);
      auto stats = [&](BnOutput y) {
        std::vector<Tensor> t = {testing::random_tensor({C}, 72, pt, device()),
                                 testing::random_tensor({C}, 73, pt, device(), 0.5, 2),
                                 testing::nan_tensor({C}, pt, device()),
                                 testing::nan_tensor({C}, pt, device())};
        kernels::batch_norm_forward(ctx, x, Tensor(), Tensor(), t[0], t[1], true, 0.1, 1e-5,
                                    optional_output(y, s, dt, device()), t[2], t[3]);
        return t;
      };
      std::ostringstream what;
      what << s << " " << dtype_name(dt) << ", y";
      expect_same_bits_whatever_the_output(stats, what.str());
    }
  const Tensor x = Tensor::zeros({4, 3}, DType::kFloat32, device());
  const Tensor c = Tensor::zeros({3}, DType::kFloat32, device());
  testing::expect_error(
      [&] { kernels::batch_norm_forward(ctx, x, c, c, c, c, false, 0.1, 1e-5, Tensor(), c, c); },
      {"batch_norm", "y is undefined"});
  testing::expect_error(
      [&] {
        kernels::batch_norm_relu_forward(ctx, x, c, c, c, c, true, 0.1, 1e-5, Tensor(), c, c);
      },
      {"batch_norm_relu", "y is undefined"});
}

// The backward with some outputs undefined (dx, dweight and dbias may each be left out): eval mode
// with dx alone skips the per-channel sums, training without dx runs the sums alone. What is
// computed matches the CPU's full backward, both layouts, with and without the fused ReLU.
TEST_P(BatchNormParity, BackwardComputesOnlyTheOutputsAsked) {
  Context& ctx = Context::current(device());
  for (DType dt : {DType::kFloat32, DType::kBFloat16})
    for (Shape s : {Shape{4, 5, 3, 3}, Shape{6, 4, 4, 4}, Shape{64, 32}})
      for (bool training : {true, false})
        for (bool relu : {false, true}) {
          const Case c{s, training, true, true, relu};
          const auto cpu = run_bn(c, dt, Device::cpu());  // #5 dx, #6 dweight, #7 dbias
          const BnInputs in = make_inputs(c, dt);
          const DType pt = math_dtype(dt);
          const int64_t C = s[1];
          auto on = [&](const Tensor& t) { return t.to(device()); };
          const Tensor x = on(in.x), dy = on(in.dy), w = on(in.w), b = on(in.b);
          const Tensor sm = on(cpu[1]), si = on(cpu[2]);  // the CPU's saved statistics
          // Eval: dx alone. Training: the sums alone.
          const Tensor dx = training ? Tensor() : testing::nan_tensor(s, dt, device());
          const Tensor dw = training ? testing::nan_tensor({C}, pt, device()) : Tensor();
          const Tensor db = training ? testing::nan_tensor({C}, pt, device()) : Tensor();
          if (relu)
            kernels::batch_norm_relu_backward(ctx, x, dy, w, b, sm, si, training, dx, dw, db);
          else
            kernels::batch_norm_backward(ctx, x, dy, w, sm, si, training, dx, dw, db);
          const std::string what = describe(c, dt);
          const double tol = 1e-4, ulp = dt == DType::kBFloat16 ? 0x1p-7 : tol;
          if (training) {
            EXPECT_TRUE(testing::all_close(dw.to(Device::cpu()), cpu[6], tol, tol)) << what;
            EXPECT_TRUE(testing::all_close(db.to(Device::cpu()), cpu[7], tol, tol)) << what;
          } else {
            EXPECT_TRUE(testing::all_close(dx.to(Device::cpu()), cpu[5], ulp, tol)) << what;
          }
        }
}

// Training backward: dweight and dbias have the same bits whether dx is written to an aligned
// tensor, to a view at an odd offset, or not at all (CUDA: the sums' vector width comes from x and
// dy alone). Both layouts, with and without the fused ReLU.
TEST_P(BatchNormParity, BackwardSumsDoNotDependOnDx) {
  Context& ctx = Context::current(device());
  for (Shape s : {Shape{16, 8, 9, 9}, Shape{512, 96}})
    for (DType dt : {DType::kFloat32, DType::kBFloat16})
      for (bool relu : {false, true}) {
        const DType pt = math_dtype(dt);
        const int64_t C = s[1];
        const Tensor x = testing::random_tensor(s, 81, dt, device(), -1, 3);
        const Tensor dy = testing::random_tensor(s, 82, dt, device(), -1, 1);
        const Tensor w = testing::random_tensor({C}, 83, pt, device(), 0.5, 1.5);
        const Tensor b = testing::random_tensor({C}, 84, pt, device(), -0.5, 0.5);
        const Tensor sm = testing::random_tensor({C}, 85, pt, device(), 0, 2);
        const Tensor si = testing::random_tensor({C}, 86, pt, device(), 0.5, 2);
        auto sums = [&](BnOutput out) {
          const Tensor dx = optional_output(out, s, dt, device());
          std::vector<Tensor> t = {testing::nan_tensor({C}, pt, device()),
                                   testing::nan_tensor({C}, pt, device())};
          if (relu)
            kernels::batch_norm_relu_backward(ctx, x, dy, w, b, sm, si, true, dx, t[0], t[1]);
          else
            kernels::batch_norm_backward(ctx, x, dy, w, sm, si, true, dx, t[0], t[1]);
          return t;
        };
        std::ostringstream what;
        what << s << " " << dtype_name(dt) << (relu ? " relu" : "") << ", dx";
        expect_same_bits_whatever_the_output(sums, what.str());
      }
}

// An empty batch in eval mode (N = 0, allowed there): nothing to normalise, and the backward's
// sums over nothing are 0, written over whatever dweight and dbias held.
TEST_P(BatchNormParity, AnEmptyBatchGivesZeroSums) {
  Context& ctx = Context::current(device());
  for (Shape s : {Shape{0, 3, 4, 4}, Shape{0, 8}})
    for (bool relu : {false, true}) {
      const Tensor x = Tensor::empty(s, DType::kFloat32, device());
      const Tensor dy = Tensor::empty(s, DType::kFloat32, device());
      const Tensor y = Tensor::empty(s, DType::kFloat32, device());
      const Tensor dx = Tensor::empty(s, DType::kFloat32, device());
      const int64_t C = s[1];
      auto per_channel = [&](uint64_t seed, double lo, double hi) {
        return testing::random_tensor({C}, seed, DType::kFloat32, device(), lo, hi);
      };
      const Tensor w = per_channel(1, 0.5, 1.5), b = per_channel(2, -1, 1);
      const Tensor rm = per_channel(3, -1, 1), rv = per_channel(4, 0.5, 2);
      const Tensor sm = testing::nan_tensor({C}, DType::kFloat32, device());
      const Tensor si = testing::nan_tensor({C}, DType::kFloat32, device());
      const Tensor dw = testing::nan_tensor({C}, DType::kFloat32, device());
      const Tensor db = testing::nan_tensor({C}, DType::kFloat32, device());
      if (relu) {
        kernels::batch_norm_relu_forward(ctx, x, w, b, rm, rv, false, 0.1, 1e-5, y, sm, si);
        kernels::batch_norm_relu_backward(ctx, x, dy, w, b, sm, si, false, dx, dw, db);
      } else {
        kernels::batch_norm_forward(ctx, x, w, b, rm, rv, false, 0.1, 1e-5, y, sm, si);
        kernels::batch_norm_backward(ctx, x, dy, w, sm, si, false, dx, dw, db);
      }
      std::ostringstream what;
      what << s << (relu ? " relu" : "");
      EXPECT_EQ(testing::values(dw), std::vector<double>(C, 0.0)) << what.str();
      EXPECT_EQ(testing::values(db), std::vector<double>(C, 0.0)) << what.str();
      EXPECT_EQ(testing::values(sm), testing::values(rm)) << what.str();  // eval: the running stats
    }
}

CYCLONE_INSTANTIATE_DEVICE_TEST(BatchNormParity);

}  // namespace
}  // namespace cyclone
