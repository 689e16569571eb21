// cyclone_conv_algos: every cuDNN convolution algorithm for one problem, each run on the same
// random operands and held against a double-precision reference computed on the host (direct
// loops over the rounded operand values): status, time, workspace, the math type and determinism
// cuDNN reports, and the worst error relative to the largest reference magnitude. It is how one
// finds out which of cuDNN's algorithms is wrong or imprecise for a shape (kernels/cuda/conv.cpp's
// pick takes the fastest deterministic one of those cuDNN lists); a diagnostic, not a benchmark
// of the library (it calls cuDNN directly).
//
//   cyclone_conv_algos [--dtype=float32|bfloat16|float16|float64] [--layout=nchw|nhwc]
//                      [--math=fma|default|tensor_op] [--no-check] [N C H W K R S STRIDE PAD]
// Default problem: LeNet-5's first convolution at batch 2 (2 1 28 28 6 5 5 1 2). The math type
// defaults to the library's (fma for float32, tensor_op for 16-bit data, default for float64).
// --no-check skips the reference (too slow on the host for a full-size layer): times only.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "cyclone_conv_algos: %s\n", what.c_str());
  std::exit(1);
}
void ck(cudaError_t e, const char* what) {
  if (e != cudaSuccess) die(std::string(what) + ": " + cudaGetErrorString(e));
}
void ck(cudnnStatus_t s, const char* what) {
  if (s != CUDNN_STATUS_SUCCESS) die(std::string(what) + ": " + cudnnGetErrorString(s));
}

enum class Dt { f32, bf16, f16, f64 };
size_t elem_size(Dt d) { return d == Dt::f64 ? 8 : d == Dt::f32 ? 4 : 2; }

struct Problem {
  int n = 2, c = 1, h = 28, w = 28, k = 6, r = 5, s = 5, stride = 1, pad = 2;
  int ho() const { return (h + 2 * pad - r) / stride + 1; }
  int wo() const { return (w + 2 * pad - s) / stride + 1; }
};

// Host values in logical NCHW order, rounded to the data type, and their device image in the
// layout asked for.
struct Operand {
  std::vector<double> v;  // NCHW (KCRS for the filter)
  void* dev = nullptr;
};

double round_to(Dt d, double x) {
  switch (d) {
    case Dt::f32:
      return static_cast<float>(x);
    case Dt::bf16:
      return static_cast<double>(__bfloat162float(__float2bfloat16(static_cast<float>(x))));
    case Dt::f16:
      return static_cast<double>(__half2float(__float2half(static_cast<float>(x))));
    case Dt::f64:
      return x;
  }
  return x;
}

// Index of logical (a, b, y, x) of dims [A, B, Y, X] in memory: NCHW or NHWC.
size_t mem_index(bool nhwc, int a, int b, int y, int x, int B, int Y, int X) {
  return nhwc ? ((static_cast<size_t>(a) * Y + y) * X + x) * B + b
              : ((static_cast<size_t>(a) * B + b) * Y + y) * X + x;
}

void upload(Dt d, bool nhwc, const std::vector<double>& v, int A, int B, int Y, int X, void* dev) {
  const size_t count = v.size();
  std::vector<unsigned char> host(count * elem_size(d));
  for (int a = 0; a < A; ++a)
    for (int b = 0; b < B; ++b)
      for (int y = 0; y < Y; ++y)
        for (int x = 0; x < X; ++x) {
          const double val = v[((static_cast<size_t>(a) * B + b) * Y + y) * X + x];
          const size_t m = mem_index(nhwc, a, b, y, x, B, Y, X);
          switch (d) {
            case Dt::f32: {
              const float f = static_cast<float>(val);
              std::memcpy(&host[m * 4], &f, 4);
              break;
            }
            case Dt::f64:
              std::memcpy(&host[m * 8], &val, 8);
              break;
            case Dt::bf16: {
              const __nv_bfloat16 b16 = __float2bfloat16(static_cast<float>(val));
              std::memcpy(&host[m * 2], &b16, 2);
              break;
            }
            case Dt::f16: {
              const __half h16 = __float2half(static_cast<float>(val));
              std::memcpy(&host[m * 2], &h16, 2);
              break;
            }
          }
        }
  ck(cudaMemcpy(dev, host.data(), host.size(), cudaMemcpyHostToDevice), "upload");
}

std::vector<double> download(Dt d, bool nhwc, const void* dev, int A, int B, int Y, int X) {
  const size_t count = static_cast<size_t>(A) * B * Y * X;
  std::vector<unsigned char> host(count * elem_size(d));
  ck(cudaMemcpy(host.data(), dev, host.size(), cudaMemcpyDeviceToHost), "download");
  std::vector<double> v(count);
  for (int a = 0; a < A; ++a)
    for (int b = 0; b < B; ++b)
      for (int y = 0; y < Y; ++y)
        for (int x = 0; x < X; ++x) {
          const size_t m = mem_index(nhwc, a, b, y, x, B, Y, X);
          double val = 0;
          switch (d) {
            case Dt::f32: {
              float f;
              std::memcpy(&f, &host[m * 4], 4);
              val = f;
              break;
            }
            case Dt::f64:
              std::memcpy(&val, &host[m * 8], 8);
              break;
            case Dt::bf16: {
              __nv_bfloat16 b16;
              std::memcpy(&b16, &host[m * 2], 2);
              val = __bfloat162float(b16);
              break;
            }
            case Dt::f16: {
              __half h16;
              std::memcpy(&h16, &host[m * 2], 2);
              val = __half2float(h16);
              break;
            }
          }
          v[((static_cast<size_t>(a) * B + b) * Y + y) * X + x] = val;
        }
  return v;
}

// Worst |got - want| over max |want|; NaN anywhere is infinite.
double scaled_error(const std::vector<double>& got, const std::vector<double>& want) {
  double worst = 0, scale = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::abs(want[i]));
    const double e = std::abs(got[i] - want[i]);
    if (!(e == e)) return INFINITY;
    worst = std::max(worst, e);
  }
  return scale > 0 ? worst / scale : worst;
}

const char* math_name(int m) {
  switch (m) {
    case CUDNN_DEFAULT_MATH:
      return "default";
    case CUDNN_TENSOR_OP_MATH:
      return "tensor_op";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION:
      return "tensor_op_conv";
    case CUDNN_FMA_MATH:
      return "fma";
  }
  return "?";
}

}  // namespace

int main(int argc, char** argv) {
  Dt dt = Dt::f32;
  bool nhwc = false;
  int math = -1;
  bool check_values = true;
  std::vector<int> pos;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--dtype=float32")
      dt = Dt::f32;
    else if (a == "--dtype=bfloat16")
      dt = Dt::bf16;
    else if (a == "--dtype=float16")
      dt = Dt::f16;
    else if (a == "--dtype=float64")
      dt = Dt::f64;
    else if (a == "--layout=nchw")
      nhwc = false;
    else if (a == "--layout=nhwc")
      nhwc = true;
    else if (a == "--math=fma")
      math = CUDNN_FMA_MATH;
    else if (a == "--math=default")
      math = CUDNN_DEFAULT_MATH;
    else if (a == "--math=tensor_op")
      math = CUDNN_TENSOR_OP_MATH;
    else if (a == "--no-check")
      check_values = false;
    else if (!a.empty() && a[0] != '-')
      pos.push_back(std::atoi(a.c_str()));
    else
      die("unknown argument " + a + " (see the comment at the top of conv_algos.cpp)");
  }
  Problem p;
  if (!pos.empty()) {
    if (pos.size() != 9) die("give all of N C H W K R S STRIDE PAD, or none");
    p = Problem{pos[0], pos[1], pos[2], pos[3], pos[4], pos[5], pos[6], pos[7], pos[8]};
  }
  if (math < 0)
    math = dt == Dt::f32   ? CUDNN_FMA_MATH
           : dt == Dt::f64 ? CUDNN_DEFAULT_MATH
                           : CUDNN_TENSOR_OP_MATH;
  const int ho = p.ho(), wo = p.wo();
  const cudnnDataType_t type = dt == Dt::f32    ? CUDNN_DATA_FLOAT
                               : dt == Dt::f64  ? CUDNN_DATA_DOUBLE
                               : dt == Dt::bf16 ? CUDNN_DATA_BFLOAT16
                                                : CUDNN_DATA_HALF;
  const cudnnDataType_t acc = dt == Dt::f64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  const cudnnTensorFormat_t fmt = nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;

  cudnnHandle_t handle;
  ck(cudnnCreate(&handle), "cudnnCreate");
  cudnnTensorDescriptor_t xd, yd;
  cudnnFilterDescriptor_t wd;
  cudnnConvolutionDescriptor_t cd;
  ck(cudnnCreateTensorDescriptor(&xd), "desc");
  ck(cudnnCreateTensorDescriptor(&yd), "desc");
  ck(cudnnCreateFilterDescriptor(&wd), "desc");
  ck(cudnnCreateConvolutionDescriptor(&cd), "desc");
  ck(cudnnSetTensor4dDescriptor(xd, fmt, type, p.n, p.c, p.h, p.w), "x desc");
  ck(cudnnSetTensor4dDescriptor(yd, fmt, type, p.n, p.k, ho, wo), "y desc");
  ck(cudnnSetFilter4dDescriptor(wd, type, fmt, p.k, p.c, p.r, p.s), "w desc");
  ck(cudnnSetConvolution2dDescriptor(cd, p.pad, p.pad, p.stride, p.stride, 1, 1,
                                     CUDNN_CROSS_CORRELATION, acc),
     "conv desc");

  // Operands uniform in [-1, 1), rounded to the data type; the references from them in double.
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(-1, 1);
  auto fill = [&](size_t count) {
    std::vector<double> v(count);
    for (auto& e : v) e = round_to(dt, u(rng));
    return v;
  };
  const std::vector<double> x = fill(static_cast<size_t>(p.n) * p.c * p.h * p.w);
  const std::vector<double> w = fill(static_cast<size_t>(p.k) * p.c * p.r * p.s);
  const std::vector<double> dy = fill(static_cast<size_t>(p.n) * p.k * ho * wo);
  std::vector<double> y_ref(dy.size(), 0.0), dx_ref(x.size(), 0.0), dw_ref(w.size(), 0.0);
  for (int n = 0; n < (check_values ? p.n : 0); ++n)
    for (int k = 0; k < p.k; ++k)
      for (int oh = 0; oh < ho; ++oh)
        for (int ow = 0; ow < wo; ++ow)
          for (int c = 0; c < p.c; ++c)
            for (int i = 0; i < p.r; ++i)
              for (int j = 0; j < p.s; ++j) {
                const int ih = oh * p.stride - p.pad + i, iw = ow * p.stride - p.pad + j;
                if (ih < 0 || ih >= p.h || iw < 0 || iw >= p.w) continue;
                const size_t yo = ((static_cast<size_t>(n) * p.k + k) * ho + oh) * wo + ow;
                const size_t xo = ((static_cast<size_t>(n) * p.c + c) * p.h + ih) * p.w + iw;
                const size_t wi = ((static_cast<size_t>(k) * p.c + c) * p.r + i) * p.s + j;
                y_ref[yo] += w[wi] * x[xo];
                dx_ref[xo] += w[wi] * dy[yo];
                dw_ref[wi] += x[xo] * dy[yo];
              }

  const size_t es = elem_size(dt);
  void *dx_in, *dw_in, *ddy_in, *out_y, *out_dx, *out_dw;
  ck(cudaMalloc(&dx_in, x.size() * es), "malloc");
  ck(cudaMalloc(&dw_in, w.size() * es), "malloc");
  ck(cudaMalloc(&ddy_in, dy.size() * es), "malloc");
  ck(cudaMalloc(&out_y, dy.size() * es), "malloc");
  ck(cudaMalloc(&out_dx, x.size() * es), "malloc");
  ck(cudaMalloc(&out_dw, w.size() * es), "malloc");
  upload(dt, nhwc, x, p.n, p.c, p.h, p.w, dx_in);
  upload(dt, nhwc, w, p.k, p.c, p.r, p.s, dw_in);
  upload(dt, nhwc, dy, p.n, p.k, ho, wo, ddy_in);
  const size_t max_ws = size_t{1} << 30;
  void* ws = nullptr;
  ck(cudaMalloc(&ws, max_ws), "workspace");
  cudaEvent_t e0, e1;
  ck(cudaEventCreate(&e0), "event");
  ck(cudaEventCreate(&e1), "event");
  const float one = 1, zero = 0;
  const double done = 1, dzero = 0;
  const void* alpha = dt == Dt::f64 ? static_cast<const void*>(&done) : &one;
  const void* beta = dt == Dt::f64 ? static_cast<const void*>(&dzero) : &zero;

  static const char* dts[] = {"float32", "bfloat16", "float16", "float64"};
  std::printf(
      "problem: x [%d, %d, %d, %d], w [%d, %d, %d, %d], stride %d, pad %d, %s, %s, "
      "math %s\n",
      p.n, p.c, p.h, p.w, p.k, p.c, p.r, p.s, p.stride, p.pad, dts[static_cast<int>(dt)],
      nhwc ? "nhwc" : "nchw", math_name(math));
  std::printf("%-10s %4s %-28s %10s %12s %-14s %-5s %12s\n", "pass", "algo", "status", "time_us",
              "workspace", "math(reported)", "det", "max_err/max");

  // Runs `run(algo, ws, bytes)` for algorithms 0..count-1: first the workspace query, then twice
  // (warm-up, output pre-filled with NaN bytes), then timed over 10 runs.
  auto each = [&](const char* pass, int count, auto ws_query, auto run, void* out, size_t out_bytes,
                  auto check, auto perf_of) {
    for (int a = 0; a < count; ++a) {
      ck(cudnnSetConvolutionMathType(cd, static_cast<cudnnMathType_t>(math)), "math");
      size_t bytes = 0;
      cudnnStatus_t st = ws_query(a, &bytes);
      std::string status = cudnnGetErrorString(st);
      if (st == CUDNN_STATUS_SUCCESS && bytes > max_ws) status = "workspace over 1 GiB";
      double us = NAN, err = NAN;
      if (status == "CUDNN_STATUS_SUCCESS") {
        ck(cudaMemset(out, 0xff, out_bytes), "memset");
        st = run(a, ws, bytes);
        if (st == CUDNN_STATUS_SUCCESS) {
          ck(cudaDeviceSynchronize(), "run");
          err = check_values ? check() : NAN;
          ck(cudaEventRecord(e0), "event");
          for (int i = 0; i < 10; ++i) (void)run(a, ws, bytes);
          ck(cudaEventRecord(e1), "event");
          ck(cudaEventSynchronize(e1), "event");
          float ms = 0;
          ck(cudaEventElapsedTime(&ms, e0, e1), "elapsed");
          us = ms * 100.0;
        } else {
          status = cudnnGetErrorString(st);
        }
      }
      std::string reported = "-", det = "-";
      perf_of(a, reported, det);
      std::printf("%-10s %4d %-28s %10.1f %12zu %-14s %-5s %12.3e\n", pass, a, status.c_str(), us,
                  bytes, reported.c_str(), det.c_str(), err);
    }
  };
  // What cuDNN's own search (Find, as the library runs it) reports per algorithm.
  auto finder = [&](auto find_fn, auto& perf, int count) {
    int got = 0;
    ck(cudnnSetConvolutionMathType(cd, static_cast<cudnnMathType_t>(math)), "math");
    (void)find_fn(count, &got, perf.data());
    return [&perf, got](int a, std::string& reported, std::string& det) {
      for (int i = 0; i < got; ++i)
        if (static_cast<int>(perf[static_cast<size_t>(i)].algo) == a &&
            perf[static_cast<size_t>(i)].status == CUDNN_STATUS_SUCCESS) {
          reported = math_name(perf[static_cast<size_t>(i)].mathType);
          det = perf[static_cast<size_t>(i)].determinism == CUDNN_DETERMINISTIC ? "yes" : "no";
        }
    };
  };

  int count = 0;
  ck(cudnnGetConvolutionForwardAlgorithmMaxCount(handle, &count), "count");
  std::vector<cudnnConvolutionFwdAlgoPerf_t> fperf(static_cast<size_t>(count));
  each(
      "forward", count,
      [&](int a, size_t* b) {
        return cudnnGetConvolutionForwardWorkspaceSize(
            handle, xd, wd, cd, yd, static_cast<cudnnConvolutionFwdAlgo_t>(a), b);
      },
      [&](int a, void* wsp, size_t b) {
        return cudnnConvolutionForward(handle, alpha, xd, dx_in, wd, dw_in, cd,
                                       static_cast<cudnnConvolutionFwdAlgo_t>(a), wsp, b, beta, yd,
                                       out_y);
      },
      out_y, dy.size() * es,
      [&] { return scaled_error(download(dt, nhwc, out_y, p.n, p.k, ho, wo), y_ref); },
      finder(
          [&](int n, int* got, cudnnConvolutionFwdAlgoPerf_t* perf) {
            return cudnnFindConvolutionForwardAlgorithmEx(handle, xd, dx_in, wd, dw_in, cd, yd,
                                                          out_y, n, got, perf, ws, max_ws);
          },
          fperf, count));
  ck(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(handle, &count), "count");
  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> dperf(static_cast<size_t>(count));
  each(
      "bwd_data", count,
      [&](int a, size_t* b) {
        return cudnnGetConvolutionBackwardDataWorkspaceSize(
            handle, wd, yd, cd, xd, static_cast<cudnnConvolutionBwdDataAlgo_t>(a), b);
      },
      [&](int a, void* wsp, size_t b) {
        return cudnnConvolutionBackwardData(handle, alpha, wd, dw_in, yd, ddy_in, cd,
                                            static_cast<cudnnConvolutionBwdDataAlgo_t>(a), wsp, b,
                                            beta, xd, out_dx);
      },
      out_dx, x.size() * es,
      [&] { return scaled_error(download(dt, nhwc, out_dx, p.n, p.c, p.h, p.w), dx_ref); },
      finder(
          [&](int n, int* got, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
            return cudnnFindConvolutionBackwardDataAlgorithmEx(
                handle, wd, dw_in, yd, ddy_in, cd, xd, out_dx, n, got, perf, ws, max_ws);
          },
          dperf, count));
  ck(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(handle, &count), "count");
  std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> wperf(static_cast<size_t>(count));
  each(
      "bwd_filter", count,
      [&](int a, size_t* b) {
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(
            handle, xd, yd, cd, wd, static_cast<cudnnConvolutionBwdFilterAlgo_t>(a), b);
      },
      [&](int a, void* wsp, size_t b) {
        return cudnnConvolutionBackwardFilter(handle, alpha, xd, dx_in, yd, ddy_in, cd,
                                              static_cast<cudnnConvolutionBwdFilterAlgo_t>(a), wsp,
                                              b, beta, wd, out_dw);
      },
      out_dw, w.size() * es,
      [&] { return scaled_error(download(dt, nhwc, out_dw, p.k, p.c, p.r, p.s), dw_ref); },
      finder(
          [&](int n, int* got, cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
            return cudnnFindConvolutionBackwardFilterAlgorithmEx(
                handle, xd, dx_in, yd, ddy_in, cd, wd, out_dw, n, got, perf, ws, max_ws);
          },
          wperf, count));
  return 0;
}
