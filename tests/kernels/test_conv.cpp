// conv2d forward / backward-data / backward-filter against naive direct loops in double on every
// device: stride 2, padding, dilation 2, 1x1, non-square inputs and kernels, batch 1, Cin = 1, a
// kernel as large as the padded input, a batch spanning several im2col groups; outputs pre-filled
// with NaN; the same in channels-last layout (NHWC operands, [Cout, kh, kw, Cin] weights); CPU-vs-
// CUDA parity (fp32, TF32, bf16, channels last); errors that name the shapes and parameters.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "common/test_util.h"
#include "cyclone/kernels/cuda/conv.h"

namespace cyclone {
namespace {

using kernels::Conv2dParams;
using testing::DeviceTest;
using testing::nan_tensor;
using testing::random_tensor;
using testing::values;

struct ConvCase {
  std::string name;
  int64_t n, c_in, h, w, c_out, kh, kw;
  Conv2dParams p;
  bool bias = true;
};

const std::vector<ConvCase>& cases() {
  static const std::vector<ConvCase> c = {
      {"basic_3x3_pad1", 2, 3, 7, 7, 4, 3, 3, Conv2dParams::square(1, 1)},
      {"stride2_pad1_nonsquare", 2, 3, 9, 8, 5, 3, 3, Conv2dParams::square(2, 1)},
      {"dilation2_pad2", 1, 2, 9, 9, 3, 3, 3, Conv2dParams::square(1, 2, 2), false},
      {"one_by_one", 3, 4, 5, 6, 6, 1, 1, Conv2dParams{}},
      {"one_by_one_stride2", 2, 4, 7, 6, 3, 1, 1, Conv2dParams::square(2, 0)},
      {"mixed_params", 2, 1, 8, 5, 3, 5, 3, Conv2dParams{1, 2, 2, 1, 1, 2}},
      {"cin1_lenet_c1", 2, 1, 28, 28, 6, 5, 5, Conv2dParams::square(1, 2)},
      {"lenet_c3", 2, 6, 14, 14, 16, 5, 5, Conv2dParams{}, false},
      {"batch1_kernel_covers_input", 1, 3, 4, 4, 2, 4, 4, Conv2dParams{}},
      {"stride3_uneven", 2, 2, 10, 11, 2, 2, 3, Conv2dParams{3, 2, 0, 1, 1, 1}},
      {"pad_beyond_kernel", 1, 2, 3, 3, 2, 2, 2, Conv2dParams::square(1, 3)},
      // Columns whose taps fall wholly in the padding, or past the input's right edge.
      {"stride2_dil3_pad4_wide", 2, 2, 5, 11, 3, 3, 4, Conv2dParams{2, 2, 4, 4, 3, 3}},
  };
  return c;
}

// Host reference in double.
struct Ref {
  const ConvCase& c;
  int64_t ho, wo;
  explicit Ref(const ConvCase& cc)
      : c(cc),
        ho(kernels::conv_out_size(cc.h, cc.kh, cc.p.pad_h, cc.p.stride_h, cc.p.dil_h)),
        wo(kernels::conv_out_size(cc.w, cc.kw, cc.p.pad_w, cc.p.stride_w, cc.p.dil_w)) {}
  int64_t xi(int64_t n, int64_t ci, int64_t h, int64_t w) const {
    return ((n * c.c_in + ci) * c.h + h) * c.w + w;
  }
  int64_t wi(int64_t co, int64_t ci, int64_t i, int64_t j) const {
    return ((co * c.c_in + ci) * c.kh + i) * c.kw + j;
  }
  int64_t yi(int64_t n, int64_t co, int64_t oh, int64_t ow) const {
    return ((n * c.c_out + co) * ho + oh) * wo + ow;
  }
  // Calls f(n, co, oh, ow, ci, i, j, ih, iw) for every in-bounds tap.
  template <class F>
  void taps(F&& f) const {
    for (int64_t n = 0; n < c.n; ++n)
      for (int64_t co = 0; co < c.c_out; ++co)
        for (int64_t oh = 0; oh < ho; ++oh)
          for (int64_t ow = 0; ow < wo; ++ow)
            for (int64_t ci = 0; ci < c.c_in; ++ci)
              for (int64_t i = 0; i < c.kh; ++i)
                for (int64_t j = 0; j < c.kw; ++j) {
                  const int64_t ih = oh * c.p.stride_h - c.p.pad_h + i * c.p.dil_h;
                  const int64_t iw = ow * c.p.stride_w - c.p.pad_w + j * c.p.dil_w;
                  if (ih < 0 || ih >= c.h || iw < 0 || iw >= c.w) continue;
                  f(yi(n, co, oh, ow), xi(n, ci, ih, iw), wi(co, ci, i, j));
                }
  }
  std::vector<double> forward(const std::vector<double>& x, const std::vector<double>& w,
                              const std::vector<double>& b) const {
    std::vector<double> y(static_cast<size_t>(c.n * c.c_out * ho * wo), 0.0);
    if (!b.empty())
      for (size_t k = 0; k < y.size(); ++k) y[k] = b[(k / (ho * wo)) % c.c_out];
    taps([&](int64_t o, int64_t in, int64_t f) { y[o] += w[f] * x[in]; });
    return y;
  }
  std::vector<double> backward_data(const std::vector<double>& dy,
                                    const std::vector<double>& w) const {
    std::vector<double> dx(static_cast<size_t>(c.n * c.c_in * c.h * c.w), 0.0);
    taps([&](int64_t o, int64_t in, int64_t f) { dx[in] += w[f] * dy[o]; });
    return dx;
  }
  std::vector<double> backward_filter(const std::vector<double>& x,
                                      const std::vector<double>& dy) const {
    std::vector<double> dw(static_cast<size_t>(c.c_out * c.c_in * c.kh * c.kw), 0.0);
    taps([&](int64_t o, int64_t in, int64_t f) { dw[f] += x[in] * dy[o]; });
    return dw;
  }
};

// Tolerances against the double reference: float32 accumulates sums of up to a few hundred
// products of magnitude <= 1 (CPU OpenBLAS or cuDNN in FMA math). bfloat16 operands are exact in
// the reference (it reads the rounded values); the sum is accumulated in float32 and the result
// rounded once to bfloat16: half an ulp, 2^-9 relative.
double rtol(DType dt) {
  return dt == DType::kFloat32    ? 1e-4
         : dt == DType::kBFloat16 ? 0x1p-8
         : is_half(dt)            ? 0x1p-10
                                  : 1e-11;
}
double atol(DType dt) { return dt == DType::kFloat32 ? 2e-5 : is_half(dt) ? 1e-4 : 1e-12; }

void check_case(const ConvCase& c, DType dt, Device d, uint64_t seed) {
  const Ref ref(c);
  const Tensor x = random_tensor({c.n, c.c_in, c.h, c.w}, seed, dt, d);
  const Tensor w = random_tensor({c.c_out, c.c_in, c.kh, c.kw}, seed + 1, dt, d);
  // bfloat16 takes no bias (the layer adds it to the float32 result).
  const Tensor b = c.bias && !is_half(dt) ? random_tensor({c.c_out}, seed + 2, dt, d) : Tensor();
  const Tensor dy = random_tensor({c.n, c.c_out, ref.ho, ref.wo}, seed + 3, dt, d);
  Context& ctx = Context::of(x);

  const Tensor y = nan_tensor({c.n, c.c_out, ref.ho, ref.wo}, dt, d);
  kernels::conv2d_forward(ctx, x, w, b, c.p, y);
  EXPECT_TRUE(testing::all_close(
      values(y), ref.forward(values(x), values(w), b.defined() ? values(b) : std::vector<double>{}),
      rtol(dt), atol(dt)))
      << c.name << " forward " << dtype_name(dt);

  const Tensor dx = nan_tensor(x.shape(), dt, d);
  kernels::conv2d_backward_data(ctx, dy, w, c.p, dx);
  EXPECT_TRUE(
      testing::all_close(values(dx), ref.backward_data(values(dy), values(w)), rtol(dt), atol(dt)))
      << c.name << " backward_data " << dtype_name(dt);

  const Tensor dw = nan_tensor(w.shape(), dt, d);
  kernels::conv2d_backward_filter(ctx, x, dy, c.p, dw);
  EXPECT_TRUE(testing::all_close(values(dw), ref.backward_filter(values(x), values(dy)), rtol(dt),
                                 atol(dt)))
      << c.name << " backward_filter " << dtype_name(dt);
}

// The case in channels-last layout: NCHW operands transposed to NHWC, the outputs transposed back
// and held against the same NCHW reference.
void check_case_channels_last(const ConvCase& c, DType dt, Device d, uint64_t seed) {
  const Ref ref(c);
  Context& ctx = Context::current(d);
  const Tensor x = random_tensor({c.n, c.c_in, c.h, c.w}, seed, dt, d);
  const Tensor w = random_tensor({c.c_out, c.c_in, c.kh, c.kw}, seed + 1, dt, d);
  const Tensor b = c.bias && !is_half(dt) ? random_tensor({c.c_out}, seed + 2, dt, d) : Tensor();
  const Tensor dy = random_tensor({c.n, c.c_out, ref.ho, ref.wo}, seed + 3, dt, d);
  const Tensor x_l = kernels::to_channels_last(ctx, x), w_l = kernels::to_channels_last(ctx, w);
  const Tensor dy_l = kernels::to_channels_last(ctx, dy);
  Conv2dParams p = c.p;
  p.channels_last = true;

  const Tensor y_l = nan_tensor(dy_l.shape(), dt, d);
  kernels::conv2d_forward(ctx, x_l, w_l, b, p, y_l);
  EXPECT_TRUE(testing::all_close(
      values(kernels::to_channels_first(ctx, y_l)),
      ref.forward(values(x), values(w), b.defined() ? values(b) : std::vector<double>{}), rtol(dt),
      atol(dt)))
      << c.name << " channels-last forward " << dtype_name(dt);

  const Tensor dx_l = nan_tensor(x_l.shape(), dt, d);
  kernels::conv2d_backward_data(ctx, dy_l, w_l, p, dx_l);
  EXPECT_TRUE(testing::all_close(values(kernels::to_channels_first(ctx, dx_l)),
                                 ref.backward_data(values(dy), values(w)), rtol(dt), atol(dt)))
      << c.name << " channels-last backward_data " << dtype_name(dt);

  const Tensor dw_l = nan_tensor(w_l.shape(), dt, d);
  kernels::conv2d_backward_filter(ctx, x_l, dy_l, p, dw_l);
  EXPECT_TRUE(testing::all_close(values(kernels::to_channels_first(ctx, dw_l)),
                                 ref.backward_filter(values(x), values(dy)), rtol(dt), atol(dt)))
      << c.name << " channels-last backward_filter " << dtype_name(dt);
}

class ConvTest : public DeviceTest {};

TEST_P(ConvTest, MatchesNaiveLoops) {
  uint64_t seed = 10;
  for (DType dt : {DType::kFloat32, DType::kFloat64, DType::kBFloat16, DType::kFloat16})
    for (const ConvCase& c : cases()) {
      check_case(c, dt, device(), seed);
      seed += 4;
    }
}

TEST_P(ConvTest, ChannelsLastMatchesNaiveLoops) {
  uint64_t seed = 300;
  for (DType dt : {DType::kFloat32, DType::kFloat64, DType::kBFloat16, DType::kFloat16})
    for (const ConvCase& c : cases()) {
      check_case_channels_last(c, dt, device(), seed);
      seed += 4;
    }
}

// 13 samples of [16, 64, 64] with a 3x3 kernel: the CPU's im2col buffer holds 12 samples, so the
// batch runs as a group of 12 (one GEMM, transposed into y) and a group of 1 (written in place),
// and the filter gradient accumulates across the groups.
TEST_P(ConvTest, BatchSpanningSeveralGroups) {
  const ConvCase c{"multi_group", 13, 16, 64, 64, 16, 3, 3, Conv2dParams::square(1, 1)};
  check_case(c, DType::kFloat64, device(), 77);
}

TEST_P(ConvTest, EmptyBatch) {
  const Device d = device();
  const Tensor x = Tensor::empty({0, 2, 5, 5}, DType::kFloat32, d);
  const Tensor w = random_tensor({3, 2, 3, 3}, 1, DType::kFloat32, d);
  const Tensor y = Tensor::empty({0, 3, 3, 3}, DType::kFloat32, d);
  kernels::conv2d_forward(Context::of(w), x, w, Tensor(), Conv2dParams{}, y);
  const Tensor dw = nan_tensor(w.shape(), DType::kFloat32, d);
  kernels::conv2d_backward_filter(Context::of(w), x, y, Conv2dParams{}, dw);
  for (double v : values(dw)) EXPECT_EQ(v, 0.0);
}

CYCLONE_INSTANTIATE_DEVICE_TEST(ConvTest);

// The CPU keeps its im2col and transpose buffers between calls (fresh blocks of this size are
// fresh pages, page faults on every call): a training loop's repeated convolutions allocate
// nothing after the first, hold no more memory, and give the same results; calls from other
// threads reuse the same blocks (one kept per buffer for the process, not one per thread).
TEST(ConvCpu, RepeatedCallsReuseTheirScratch) {
  const Device cpu = Device::cpu();
  const Tensor x = random_tensor({8, 3, 20, 20}, 5, DType::kFloat32, cpu);
  const Tensor w = random_tensor({4, 3, 5, 5}, 6, DType::kFloat32, cpu);
  const Tensor dy = random_tensor({8, 4, 20, 20}, 7, DType::kFloat32, cpu);
  const Conv2dParams p = Conv2dParams::square(1, 2);
  const Tensor y = Tensor::empty(dy.shape(), DType::kFloat32, cpu);
  const Tensor dx = Tensor::empty(x.shape(), DType::kFloat32, cpu);
  const Tensor dw = Tensor::empty(w.shape(), DType::kFloat32, cpu);
  auto step = [&] {
    kernels::conv2d_forward(Context::of(x), x, w, Tensor(), p, y);
    kernels::conv2d_backward_data(Context::of(x), dy, w, p, dx);
    kernels::conv2d_backward_filter(Context::of(x), x, dy, p, dw);
    return std::vector<std::vector<double>>{values(y), values(dx), values(dw)};
  };
  const auto first = step();
  const MemoryStats before = cpu_memory_stats();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(step(), first) << "call " << i + 2;
  for (int i = 0; i < 2; ++i) {  // one thread after another
    std::vector<std::vector<double>> got;
    std::thread([&] { got = step(); }).join();
    EXPECT_EQ(got, first) << "thread " << i;
  }
  const MemoryStats after = cpu_memory_stats();
  // values() copies into std::vector, not CPU tensors: only the convolutions could allocate.
  EXPECT_EQ(after.num_allocs, before.num_allocs);
  EXPECT_EQ(after.current_bytes, before.current_bytes);
}

// ---- CPU vs CUDA on the same float32 inputs ----

// float32 (fp32 or TF32 math) or bfloat16 (bf16 tensor cores against the CPU's widened float32;
// no bias).
// With channels_last, every case runs on NHWC operands on both devices.
void parity(bool tf32, DType dt = DType::kFloat32, bool channels_last = false) {
  CYCLONE_SKIP_IF_UNAVAILABLE(Device::cuda());
  const bool bf16 = is_half(dt);  // bfloat16 or float16: no bias, one rounding
  Context& gctx = Context::current(Device::cuda());
  const bool was = gctx.allow_tf32();
  gctx.set_allow_tf32(tf32);
  std::vector<ConvCase> all = cases();
  // A WRN-like layer: long sums (K = 576) where TF32's rounding shows.
  all.push_back({"wrn_like", 4, 64, 16, 16, 64, 3, 3, Conv2dParams::square(1, 1)});
  uint64_t seed = 500;
  for (const ConvCase& c : all) {
    const Ref ref(c);
    const Device cpu = Device::cpu(), gpu = Device::cuda();
    const Tensor x = random_tensor({c.n, c.c_in, c.h, c.w}, seed, dt, cpu);
    const Tensor w = random_tensor({c.c_out, c.c_in, c.kh, c.kw}, seed + 1, dt, cpu);
    const Tensor b = bf16 ? Tensor() : random_tensor({c.c_out}, seed + 2, dt, cpu);
    const Tensor dy = random_tensor({c.n, c.c_out, ref.ho, ref.wo}, seed + 3, dt, cpu);
    seed += 4;
    Conv2dParams p = c.p;
    p.channels_last = channels_last;
    auto run = [&](Device d) {
      Context& ctx = Context::current(d);
      auto layout = [&](const Tensor& t) {
        return channels_last ? kernels::to_channels_last(ctx, t.to(d)) : t.to(d);
      };
      const Tensor xd = layout(x), wd = layout(w), bd = bf16 ? Tensor() : b.to(d), dyd = layout(dy);
      const Tensor y = nan_tensor(dyd.shape(), dt, d);
      const Tensor dx = nan_tensor(xd.shape(), dt, d);
      const Tensor dw = nan_tensor(wd.shape(), dt, d);
      kernels::conv2d_forward(ctx, xd, wd, bd, p, y);
      kernels::conv2d_backward_data(ctx, dyd, wd, p, dx);
      kernels::conv2d_backward_filter(ctx, xd, dyd, p, dw);
      return std::vector<std::vector<double>>{values(y), values(dx), values(dw)};
    };
    const auto on_cpu = run(cpu), on_gpu = run(gpu);
    const char* what[] = {"forward", "backward_data", "backward_filter"};
    for (int k = 0; k < 3; ++k) {
      const double err = testing::relative_error(on_gpu[k], on_cpu[k]);
      // GPU.md: fp32 far under 1e-3, TF32 near 3e-4 (bounded here with margin); bfloat16 results
      // are each rounded once, so the two devices differ by at most an ulp (2^-8) per element.
      EXPECT_LT(err, bf16   ? 5e-3
                     : tf32 ? 3e-3
                            : 1e-5)
          << c.name << " " << what[k]
          << (bf16   ? " bf16"
              : tf32 ? " tf32"
                     : " fp32");
    }
  }
  gctx.set_allow_tf32(was);
}

// Which data types and filters may use cuDNN's non-fused Winograd algorithms (kernels/cuda/conv.cpp
// has the measured errors): float32 3x3 and smaller (~1e-5 of the output's scale), not LeNet-5's
// 5x5 (3.3e-3) unless TF32 is allowed, never the 16-bit types or float64. Needs a CUDA build, no
// GPU.
TEST(ConvCudaPolicy, NonFusedWinogradOnlyWhereItKeepsTheAccuracy) {
  if (!built_with_cuda()) GTEST_SKIP() << "a build without CUDA has no cuDNN policy";
  using kernels::cuda::conv_winograd_allowed;
  EXPECT_TRUE(conv_winograd_allowed(DType::kFloat32, false, 3, 3));
  EXPECT_TRUE(conv_winograd_allowed(DType::kFloat32, false, 1, 3));
  EXPECT_FALSE(conv_winograd_allowed(DType::kFloat32, false, 5, 5));
  EXPECT_FALSE(conv_winograd_allowed(DType::kFloat32, false, 3, 5));
  EXPECT_TRUE(conv_winograd_allowed(DType::kFloat32, true, 5, 5));
  for (DType dt : {DType::kBFloat16, DType::kFloat16, DType::kFloat64})
    for (bool tf32 : {false, true})
      EXPECT_FALSE(conv_winograd_allowed(dt, tf32, 3, 3)) << dtype_name(dt);
}

TEST(ConvCuda, ParityWithCpuFp32) { parity(false); }
TEST(ConvCuda, ParityWithCpuTf32) { parity(true); }
TEST(ConvCuda, ParityWithCpuBfloat16) { parity(false, DType::kBFloat16); }
TEST(ConvCuda, ParityWithCpuChannelsLastFp32) { parity(false, DType::kFloat32, true); }
TEST(ConvCuda, ParityWithCpuChannelsLastBfloat16) { parity(false, DType::kBFloat16, true); }
TEST(ConvCuda, ParityWithCpuFloat16) { parity(false, DType::kFloat16); }
TEST(ConvCuda, ParityWithCpuChannelsLastFloat16) { parity(false, DType::kFloat16, true); }

// ---- errors ----

using ::cyclone::testing::expect_error;

TEST(ConvErrors, ChannelMismatchNamesBothShapes) {
  const Tensor x = Tensor::zeros({2, 3, 8, 8}, DType::kFloat32, Device::cpu());
  const Tensor w = Tensor::zeros({4, 5, 3, 3}, DType::kFloat32, Device::cpu());
  const Tensor y = Tensor::empty({2, 4, 6, 6}, DType::kFloat32, Device::cpu());
  expect_error([&] { kernels::conv2d_forward(Context::of(x), x, w, Tensor(), {}, y); },
               {"conv2d_forward", "[2, 3, 8, 8]", "[4, 5, 3, 3]", "channels"});
}

TEST(ConvErrors, ChannelsLastNamesItsLayout) {
  // An NCHW weight given to a channels-last problem: the channel counts disagree, and the message
  // says which layout was expected.
  const Tensor x = Tensor::zeros({2, 8, 8, 3}, DType::kFloat32, Device::cpu());
  const Tensor w = Tensor::zeros({4, 3, 5, 5}, DType::kFloat32, Device::cpu());
  const Tensor y = Tensor::empty({2, 4, 4, 4}, DType::kFloat32, Device::cpu());
  Conv2dParams p;
  p.channels_last = true;
  expect_error([&] { kernels::conv2d_forward(Context::of(x), x, w, Tensor(), p, y); },
               {"conv2d_forward", "[2, 8, 8, 3]", "[4, 3, 5, 5]", "[Cout, kh, kw, Cin]"});
  const Tensor wl = Tensor::zeros({4, 3, 3, 3}, DType::kFloat32, Device::cpu());
  const Tensor bad = Tensor::empty({2, 4, 6, 6}, DType::kFloat32, Device::cpu());
  const Tensor xl = Tensor::zeros({2, 8, 8, 3}, DType::kFloat32, Device::cpu());
  expect_error([&] { kernels::conv2d_forward(Context::of(x), xl, wl, Tensor(), p, bad); },
               {"y has shape [2, 4, 6, 6]", "expected [2, 6, 6, 4]", "channels last"});
}

TEST(ConvErrors, NonPositiveOutputNamesInputAndParameters) {
  const Tensor x = Tensor::zeros({1, 1, 4, 4}, DType::kFloat32, Device::cpu());
  const Tensor w = Tensor::zeros({1, 1, 3, 3}, DType::kFloat32, Device::cpu());
  const Tensor y = Tensor::empty({1, 1, 1, 1}, DType::kFloat32, Device::cpu());
  expect_error(
      [&] {
        kernels::conv2d_forward(Context::of(x), x, w, Tensor(), Conv2dParams::square(1, 0, 3), y);
      },
      {"output size", "input 4 x 4", "dilation (3, 3)", "padding (0, 0)", "stride (1, 1)"});
}

TEST(ConvErrors, Bfloat16TakesNoBias) {
  const Tensor x = random_tensor({1, 2, 5, 5}, 1, DType::kBFloat16);
  const Tensor w = random_tensor({3, 2, 3, 3}, 2, DType::kBFloat16);
  const Tensor b = random_tensor({3}, 3, DType::kBFloat16);
  const Tensor y = Tensor::empty({1, 3, 3, 3}, DType::kBFloat16, Device::cpu());
  expect_error([&] { kernels::conv2d_forward(Context::of(x), x, w, b, Conv2dParams{}, y); },
               {"conv2d_forward", "bias", "bfloat16"});
}

TEST(ConvErrors, WrongOutputAndBiasShapes) {
  const Tensor x = Tensor::zeros({2, 3, 8, 8}, DType::kFloat32, Device::cpu());
  const Tensor w = Tensor::zeros({4, 3, 3, 3}, DType::kFloat32, Device::cpu());
  const Tensor y = Tensor::empty({2, 4, 8, 8}, DType::kFloat32, Device::cpu());
  expect_error([&] { kernels::conv2d_forward(Context::of(x), x, w, Tensor(), {}, y); },
               {"y has shape [2, 4, 8, 8]", "expected [2, 4, 6, 6]"});
  const Tensor ok = Tensor::empty({2, 4, 6, 6}, DType::kFloat32, Device::cpu());
  const Tensor b = Tensor::zeros({3}, DType::kFloat32, Device::cpu());
  expect_error([&] { kernels::conv2d_forward(Context::of(x), x, w, b, {}, ok); },
               {"bias has shape [3]", "expected [4]"});
  const Tensor xd = Tensor::zeros({2, 3, 8, 8}, DType::kFloat64, Device::cpu());
  expect_error([&] { kernels::conv2d_forward(Context::of(x), xd, w, Tensor(), {}, ok); },
               {"dtypes differ", "float64", "float32"});
  expect_error(
      [&] { kernels::conv2d_forward(Context::of(x), x, w, Tensor(), Conv2dParams::square(0), ok); },
      {"invalid parameters", "stride (0, 0)"});
}

TEST(ConvErrors, OutputSizeFormula) {
  // floor((H + 2p - d(k-1) - 1)/s) + 1
  EXPECT_EQ(kernels::conv_out_size(32, 3, 1, 1, 1), 32);
  EXPECT_EQ(kernels::conv_out_size(32, 3, 1, 2, 1), 16);
  EXPECT_EQ(kernels::conv_out_size(32, 1, 0, 2, 1), 16);
  EXPECT_EQ(kernels::conv_out_size(28, 5, 2, 1, 1), 28);
  EXPECT_EQ(kernels::conv_out_size(14, 5, 0, 1, 1), 10);
  EXPECT_EQ(kernels::conv_out_size(9, 3, 2, 1, 2), 9);
  EXPECT_EQ(kernels::conv_out_size(4, 3, 0, 1, 3), -2);  // floor(-3/1) + 1
  EXPECT_EQ(kernels::conv_out_size(2, 5, 0, 2, 1), -1);  // floor(-4/2) + 1
}

}  // namespace
}  // namespace cyclone
