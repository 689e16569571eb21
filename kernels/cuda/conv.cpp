// Convolution on the GPU through cuDNN's legacy convolution API (cuDNN 9 deprecates it in favour
// of the graph API but ships and supports it; the warnings are silenced for this file only).
//
// Math mode. For float data cuDNN's CUDNN_DEFAULT_MATH permits TF32 tensor cores on Ampere and
// newer (an input rounded to a 10-bit mantissa: ~1e-3 relative error over long sums), so the
// fp32-accurate default asks for CUDNN_FMA_MATH, and ctx.allow_tf32() selects CUDNN_DEFAULT_MATH;
// this is PyTorch's mapping of torch.backends.cudnn.allow_tf32. (NVIDIA_TF32_OVERRIDE=0 in the
// environment forbids TF32 globally either way.) Double data always uses CUDNN_DEFAULT_MATH (no
// tensor-core path for it); bfloat16 and float16 data ask for CUDNN_TENSOR_OP_MATH (tensor
// cores, float accumulation).
//
// Algorithm choice. Per problem (pass, device, dtype, math mode, shapes, stride, padding,
// dilation, layout, and each operand's alignment up to 16 bytes, since an algorithm timed on the
// allocator's aligned buffers may be unable to read a view at an odd offset) cuDNN's heuristics
// (cudnnGet*_v7) list the candidates and the workspace they need; then cudnnFind*Ex times them on
// the call's own buffers with a workspace as large as the largest candidate's (capped at
// kMaxWorkspace). The fastest deterministic algorithm wins (the fastest of any kind when none is
// deterministic), so training runs repeat bit for bit, among those that keep the data type's
// accuracy (the non-fused Winograd ones only for filters up to 3x3 or where TF32 is allowed:
// lossy_winograd below); the choice is cached for the life of the process (kernels/algo_cache.h;
// across runs too in the file named by $CYCLONE_CUDNN_CACHE). A stored choice cuDNN does not accept
// here (an algorithm or math type out of range, or one whose workspace query fails) is searched
// again and replaced, and its workspace is asked of cuDNN (once per process), never taken from the
// file. Find cannot run inside CUDA-graph capture (it synchronises), so a problem first met while
// capturing takes the heuristics' choice, uncached; so does one whose search workspace cannot be
// allocated (the pick then needs none). Workspace comes from the caching allocator (a uint8 tensor
// on the context's stream). A failed convolution names the pass, the shapes, the dtype and the
// algorithm.
#include <cudnn.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "cyclone/core/cuda/check.h"
#include "cyclone/core/cuda/handles.h"
#include "cyclone/core/cuda/runtime.h"
#include "cyclone/kernels/algo_cache.h"
#include "cyclone/kernels/cuda/conv.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace cyclone::kernels::cuda {

namespace {

// Largest workspace an algorithm may use: 1 GiB, a small part of an 80 GB card, enough for every
// fast algorithm on the WRN-28-10 shapes at batch 128.
constexpr size_t kMaxWorkspace = size_t{1} << 30;

enum class Pass : int64_t { kForward, kBackwardData, kBackwardFilter };

const char* pass_name(Pass p) {
  switch (p) {
    case Pass::kForward:
      return "conv2d_forward";
    case Pass::kBackwardData:
      return "conv2d_backward_data";
    case Pass::kBackwardFilter:
      return "conv2d_backward_filter";
  }
  return "conv2d";
}

cudnnDataType_t data_type(DType dt) {
  if (dt == DType::kBFloat16) return CUDNN_DATA_BFLOAT16;
  if (dt == DType::kFloat16) return CUDNN_DATA_HALF;
  return dt == DType::kFloat64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
}

// alpha = 1 and beta = 0 or 1 as the scaling type cuDNN reads for `dt` (double for double data,
// float otherwise).
struct Scale {
  explicit Scale(DType dt) : dbl(dt == DType::kFloat64) {}
  const void* one() const { return dbl ? static_cast<const void*>(&d1) : &f1; }
  const void* zero() const { return dbl ? static_cast<const void*>(&d0) : &f0; }
  bool dbl;
  float f0 = 0, f1 = 1;
  double d0 = 0, d1 = 1;
};

// The descriptors of one problem.
struct Problem {
  Problem(Context& ctx, const Conv2dGeometry& g, DType dt)
      : handle(static_cast<cudnnHandle_t>(ctx.cudnn())), type(data_type(dt)) {
    const bool fp32 = dt == DType::kFloat32, half = is_half(dt);
    math = fp32 && !ctx.allow_tf32() ? CUDNN_FMA_MATH
           : half                    ? CUDNN_TENSOR_OP_MATH
                                     : CUDNN_DEFAULT_MATH;
    strict_fp32 = math == CUDNN_FMA_MATH;
    // The non-fused Winograd algorithms: where TF32 is allowed, and in float32 for filters of
    // 3x3 and smaller, which they keep to ~1e-5 of the output's scale (lossy_winograd).
    winograd_ok = conv_winograd_allowed(dt, ctx.allow_tf32(), g.kh, g.kw);
    auto i = [](int64_t v) { return static_cast<int>(v); };  // sizes validated to fit an int
    // Sizes are given in NCHW order whatever the layout; NHWC says how they lie in memory (the
    // filter then is [Cout, kh, kw, Cin]).
    format = g.p.channels_last ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, format, type, i(g.n), i(g.c_in), i(g.h), i(g.w)));
    CUDNN_CHECK(
        cudnnSetTensor4dDescriptor(y, format, type, i(g.n), i(g.c_out), i(g.h_out), i(g.w_out)));
    CUDNN_CHECK(
        cudnnSetFilter4dDescriptor(w, type, format, i(g.c_out), i(g.c_in), i(g.kh), i(g.kw)));
    const Conv2dParams& p = g.p;
    // cuDNN's "convolution" mode flips the filter; deep-learning convolution is the
    // cross-correlation. Accumulation in the data type (float or double), and in float for
    // bfloat16 and float16 data (cuDNN's PSEUDO_BFLOAT16_CONFIG and PSEUDO_HALF_CONFIG).
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv, p.pad_h, p.pad_w, p.stride_h, p.stride_w,
                                                p.dil_h, p.dil_w, CUDNN_CROSS_CORRELATION,
                                                half ? CUDNN_DATA_FLOAT : type));
    CUDNN_CHECK(cudnnSetConvolutionMathType(conv, math));
  }
  cudnnHandle_t handle;
  cudnnDataType_t type;
  cudnnMathType_t math;
  cudnnTensorFormat_t format;
  bool strict_fp32 = false;
  bool winograd_ok = false;
  CudnnTensorDescriptor x, y;
  CudnnFilterDescriptor w;
  CudnnConvolutionDescriptor conv;
};

struct Choice {
  int algo = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t workspace = 0;
};

using Key = AlgoKey;

// The x, w and y descriptors' data (dx, w, dy for backward data; x, dw, dy for backward filter).
struct Operands {
  const void* x;
  const void* w;
  const void* y;
};

Key key_of(Pass pass, Context& ctx, const Conv2dGeometry& g, DType dt, cudnnMathType_t math,
           const Operands& o) {
  return conv_algo_key(static_cast<int64_t>(pass), ctx.device().index, dt, math, g, o.x, o.w, o.y);
}

// "; operands (x, weight, y) aligned to 16, 2 and 16 bytes: ..." when one is less than 16-byte
// aligned (a view at an odd offset, Tensor::slice), which some of cuDNN's kernels cannot read (and
// cuDNN has documented a 4-byte minimum for every algorithm); "" otherwise.
std::string alignment_note(const Operands& o) {
  const int64_t a[] = {pointer_alignment(o.x), pointer_alignment(o.w), pointer_alignment(o.y)};
  if (a[0] == 16 && a[1] == 16 && a[2] == 16) return "";
  return cyclone::detail::str_cat("; operands (x, weight, y) aligned to ", a[0], ", ", a[1],
                                  " and ", a[2], " bytes: clone() a sliced view to realign it");
}

// Which algorithms the search may pick (usable() below). Change it with that policy: a file stored
// under another one holds choices the search would no longer make (or misses ones it now would:
// fp32 3x3 Winograd since fbe58c9), and is then replaced instead of reused.
constexpr const char* kSelectionPolicy = "policy 2 (fp32 Winograd up to 3x3)";

// What a stored choice is valid for: the selection policy, the library versions and every visible
// GPU's name and compute capability.
std::string fingerprint() {
  std::string fp = std::string(kSelectionPolicy) + "; " + gpu::versions();
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) count = 0;
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, d) == cudaSuccess)
      fp += "; " + std::string(prop.name) + " sm_" + std::to_string(prop.major * 10 + prop.minor);
  }
  (void)cudaGetLastError();
  return fp;
}

// The process-wide table (kernels/algo_cache.h), on disk at $CYCLONE_CUDNN_CACHE when set.
AlgoCache& cache() {
  static AlgoCache c = [] {
    const char* path = std::getenv("CYCLONE_CUDNN_CACHE");
    return AlgoCache(path ? path : "", fingerprint());
  }();
  return c;
}

// "x [n, c, h, w], weight [cout, cin, kh, kw], <params>": the problem, for error messages.
std::string problem_str(const Conv2dGeometry& g) {
  return cyclone::detail::str_cat("x [", g.n, ", ", g.c_in, ", ", g.h, ", ", g.w, "], weight [",
                                  g.c_out, ", ", g.c_in, ", ", g.kh, ", ", g.kw, "], ",
                                  conv2d_params_str(g.p));
}

bool tensor_op(int math) {
  return math == CUDNN_TENSOR_OP_MATH || math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

// cuDNN's non-fused Winograd algorithms (forward 7, backward data 5, backward filter 5: the one
// named WINOGRAD_NONFUSED in each pass) transform the operands and lose precision doing it, the
// more the larger the filter. On an H200 with cuDNN 9.19 (bin/cyclone_conv_algos, float32 FMA
// math, worst error against a double reference as a fraction of the largest output):
// - LeNet-5's 5x5 first convolution (2x1x28x28, 6x1x5x5, pad 2): 2.2e-3 forward, 3.3e-3 backward
//   data, 9.3e-4 backward filter, where every other algorithm kept 2e-7; 1.6e-3 against 2.7e-4 in
//   float16 (benchmarks/results/2026-11-27-h200-diag/conv_algos.txt). TF32-grade arithmetic.
// - WRN-28-10's 3x3 convolutions (160, 320 and 640 channels, batch 2): 2.9e-6 to 1.7e-5, against
//   2e-7 to 2e-6 for the implicit GEMMs (benchmarks/results/2026-11-27-h200-245ec41/
//   conv_algos.txt): float32-grade (PyTorch's float32 convolutions do not exclude them either);
//   without them WRN-28-10's float32 step took 146 ms, with them (every size) 51.9.
// So float32 takes them for filters up to 3x3 (conv_winograd_allowed) and otherwise only where
// TF32 is allowed; the 16-bit types never (their tensor-core GEMMs are faster anyway).
bool lossy_winograd(Pass pass, int algo) {
  switch (pass) {
    case Pass::kForward:
      return algo == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
    case Pass::kBackwardData:
      return algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
    case Pass::kBackwardFilter:
      return algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
  }
  return false;
}
template <class Perf>
bool lossy_winograd(const Perf& r) {
  using Algo = decltype(r.algo);
  const Pass pass = std::is_same_v<Algo, cudnnConvolutionFwdAlgo_t>       ? Pass::kForward
                    : std::is_same_v<Algo, cudnnConvolutionBwdDataAlgo_t> ? Pass::kBackwardData
                                                                          : Pass::kBackwardFilter;
  return lossy_winograd(pass, static_cast<int>(r.algo));
}

// A result cuDNN says ran (or would run), which keeps the data type's accuracy (the non-fused
// Winograd ones where `winograd_ok`: conv_winograd_allowed). In fp32 (FMA) math a tensor-op label
// is refused: cuDNN may label an FMA kernel CUDNN_DEFAULT_MATH, and the descriptor (set to FMA)
// already rules TF32 out. The non-fused Winograd algorithms are refused unless winograd_ok.
template <class Perf>
bool usable(const Perf& r, bool strict_fp32, bool winograd_ok) {
  return r.status == CUDNN_STATUS_SUCCESS && !(strict_fp32 && tensor_op(r.mathType)) &&
         (winograd_ok || !lossy_winograd(r));
}

// The table's keys whose choice this process made or checked against cuDNN (choose()).
class TrustedKeys {
 public:
  bool has(const Key& k) {
    std::lock_guard lock(mutex_);
    return keys_.count(k) != 0;
  }
  void add(const Key& k) {
    std::lock_guard lock(mutex_);
    keys_.insert(k);
  }

 private:
  std::mutex mutex_;
  std::set<Key> keys_;
};
TrustedKeys& trusted() {
  static TrustedKeys t;
  return t;
}

// The fastest usable entry of cuDNN's list (sorted fastest first) that fits the workspace,
// deterministic ones preferred.
template <class Perf>
std::optional<Perf> pick(const std::vector<Perf>& perf, int count, bool strict_fp32,
                         bool winograd_ok, size_t workspace) {
  std::optional<Perf> any, deterministic;
  for (int i = 0; i < count; ++i) {
    const Perf& r = perf[static_cast<size_t>(i)];
    if (!usable(r, strict_fp32, winograd_ok) || r.memory > workspace) continue;
    if (!any) any = r;
    if (!deterministic && r.determinism == CUDNN_DETERMINISTIC) deterministic = r;
  }
  return deterministic ? deterministic : any;
}

// The largest workspace any usable heuristic candidate asks for, capped.
template <class Perf>
size_t search_workspace(const std::vector<Perf>& perf, int count, bool strict_fp32,
                        bool winograd_ok) {
  size_t ws = 0;
  for (int i = 0; i < count; ++i) {
    const Perf& r = perf[static_cast<size_t>(i)];
    if (usable(r, strict_fp32, winograd_ok) && r.memory <= kMaxWorkspace)
      ws = std::max(ws, r.memory);
  }
  return ws;
}

bool capturing(Context& ctx) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  CUDA_CHECK(cudaStreamIsCapturing(static_cast<cudaStream_t>(ctx.stream()), &status));
  return status != cudaStreamCaptureStatusNone;
}

Tensor workspace_tensor(Context& ctx, size_t bytes) {
  if (bytes == 0) return Tensor();
  return Tensor::empty({static_cast<int64_t>(bytes)}, DType::kUInt8, ctx);
}
void* ptr(const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; }

// Heuristics, then (outside capture) timing, then the pick. `heuristic(count, &returned, perf)`
// and `find(count, &returned, perf, workspace, bytes)` wrap the pass's cudnnGet*_v7 and
// cudnnFind*Ex; `ws_size(algo, &bytes)` its cudnnGet*WorkspaceSize (for the chosen math type).
template <class Perf, class Heuristic, class Find, class WsSize>
Choice search(Context& ctx, Pass pass, const Conv2dGeometry& g, Problem& pr, const Operands& o,
              int max_count, Heuristic heuristic, Find find, WsSize ws_size) {
  std::vector<Perf> perf(static_cast<size_t>(std::max(max_count, 1)));
  int returned = 0;
  CUDNN_CHECK(heuristic(max_count, &returned, perf.data()));
  size_t limit = kMaxWorkspace;
  bool memory_full = false;
  if (!capturing(ctx)) {
    limit = search_workspace(perf, returned, pr.strict_fp32, pr.winograd_ok);
    Tensor ws;
    try {
      ws = workspace_tensor(ctx, limit);
    } catch (const OutOfMemory&) {
      memory_full = true;  // no room to time them: the heuristics' pick among those needing none
      limit = 0;
    }
    if (!memory_full) CUDNN_CHECK(find(max_count, &returned, perf.data(), ptr(ws), limit));
  }
  const std::optional<Perf> best = pick(perf, returned, pr.strict_fp32, pr.winograd_ok, limit);
  CYCLONE_CHECK(best.has_value(), pass_name(pass), ": cuDNN offers no usable algorithm for ",
                problem_str(g), pr.strict_fp32 ? " in fp32 (FMA) math" : "",
                memory_full ? " without workspace (device memory is full)" : "", alignment_note(o));
  Choice c;
  c.algo = static_cast<int>(best->algo);
  c.math = pr.strict_fp32 ? CUDNN_FMA_MATH : best->mathType;
  CUDNN_CHECK(cudnnSetConvolutionMathType(pr.conv, c.math));
  CUDNN_CHECK(ws_size(best->algo, &c.workspace));
  return c;
}

// The cached choice for the problem, searching on a miss. Leaves pr.conv set to the choice's math
// type (cuDNN needs algorithm and math type together to select the same kernel again).
template <class Perf, class Heuristic, class Find, class WsSize>
Choice choose(Context& ctx, Pass pass, const Conv2dGeometry& g, DType dt, Problem& pr,
              const Operands& o, int max_count, Heuristic heuristic, Find find, WsSize ws_size) {
  const Key key = key_of(pass, ctx, g, dt, pr.math, o);
  // A stored choice (perhaps from a file written elsewhere) is used when it is still one cuDNN
  // accepts here, with the workspace asked of cuDNN; otherwise searched again and replaced. Once
  // per process: a choice this process made or checked is used as it is (no query per step).
  if (const std::optional<AlgoChoice> hit = cache().find(key);
      hit && hit->algo < max_count && hit->math >= CUDNN_DEFAULT_MATH &&
      hit->math <= CUDNN_FMA_MATH && !(pr.strict_fp32 && tensor_op(hit->math)) &&
      (pr.winograd_ok || !lossy_winograd(pass, hit->algo))) {
    Choice c;
    c.algo = hit->algo;
    c.math = static_cast<cudnnMathType_t>(hit->math);
    c.workspace = static_cast<size_t>(hit->workspace);
    CUDNN_CHECK(cudnnSetConvolutionMathType(pr.conv, c.math));
    if (trusted().has(key)) return c;
    using Algo = decltype(Perf{}.algo);
    if (ws_size(static_cast<Algo>(c.algo), &c.workspace) == CUDNN_STATUS_SUCCESS &&
        c.workspace <= kMaxWorkspace) {
      if (c.workspace != hit->workspace)
        cache().insert(key, AlgoChoice{c.algo, static_cast<int>(c.math), c.workspace});
      trusted().add(key);
      return c;
    }
    CUDNN_CHECK(cudnnSetConvolutionMathType(pr.conv, pr.math));  // as the search expects
  }
  // Two threads meeting a new problem at once both time it, harmlessly.
  const bool cacheable = !capturing(ctx);
  const Choice c = search<Perf>(ctx, pass, g, pr, o, max_count, heuristic, find, ws_size);
  if (cacheable) {
    cache().insert(key, AlgoChoice{c.algo, static_cast<int>(c.math), c.workspace});
    trusted().add(key);
  }
  return c;
}

// A failed convolution call names the pass, the problem and the algorithm it ran.
void check_run(cudnnStatus_t status, Pass pass, const Conv2dGeometry& g, DType dt,
               const Operands& o, const Choice& c) {
  if (status == CUDNN_STATUS_SUCCESS) [[likely]]
    return;
  const std::string& file = cache().path();
  CYCLONE_THROW(pass_name(pass), ": cuDNN says ", cudnnGetErrorString(status), " for ",
                problem_str(g), " in ", dtype_name(dt), " with algorithm ", c.algo, ", math type ",
                static_cast<int>(c.math), " and ", c.workspace, " bytes of workspace",
                alignment_note(o),
                file.empty() ? std::string()
                             : "; if " + file +
                                   " ($CYCLONE_CUDNN_CACHE) was written on another "
                                   "machine, delete it");
}

}  // namespace

bool conv_winograd_allowed(DType dt, bool allow_tf32, int64_t kh, int64_t kw) {
  return dt == DType::kFloat32 && (allow_tf32 || (kh <= 3 && kw <= 3));
}

void conv2d_forward(Context& ctx, const Conv2dGeometry& g, const Tensor& x, const Tensor& weight,
                    const Tensor& bias, const Tensor& y) {
  Problem pr(ctx, g, x.dtype());
  int max_count = 0;
  CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(pr.handle, &max_count));
  const Operands o{x.raw_data(), weight.raw_data(), y.raw_data()};
  const Choice c = choose<cudnnConvolutionFwdAlgoPerf_t>(
      ctx, Pass::kForward, g, x.dtype(), pr, o, max_count,
      [&](int n, int* got, cudnnConvolutionFwdAlgoPerf_t* perf) {
        return cudnnGetConvolutionForwardAlgorithm_v7(pr.handle, pr.x, pr.w, pr.conv, pr.y, n, got,
                                                      perf);
      },
      [&](int n, int* got, cudnnConvolutionFwdAlgoPerf_t* perf, void* ws, size_t bytes) {
        return cudnnFindConvolutionForwardAlgorithmEx(pr.handle, pr.x, x.raw_data(), pr.w,
                                                      weight.raw_data(), pr.conv, pr.y,
                                                      y.raw_data(), n, got, perf, ws, bytes);
      },
      [&](cudnnConvolutionFwdAlgo_t algo, size_t* bytes) {
        return cudnnGetConvolutionForwardWorkspaceSize(pr.handle, pr.x, pr.w, pr.conv, pr.y, algo,
                                                       bytes);
      });
  const Tensor ws = workspace_tensor(ctx, c.workspace);
  const Scale s(x.dtype());
  check_run(cudnnConvolutionForward(pr.handle, s.one(), pr.x, x.raw_data(), pr.w, weight.raw_data(),
                                    pr.conv, static_cast<cudnnConvolutionFwdAlgo_t>(c.algo),
                                    ptr(ws), c.workspace, s.zero(), pr.y, y.raw_data()),
            Pass::kForward, g, x.dtype(), o, c);
  if (bias.defined()) {
    // y += bias broadcast over N, H, W: a [1, Cout, 1, 1] tensor added in place.
    CudnnTensorDescriptor b;
    CUDNN_CHECK(
        cudnnSetTensor4dDescriptor(b, pr.format, pr.type, 1, static_cast<int>(g.c_out), 1, 1));
    CUDNN_CHECK(
        cudnnAddTensor(pr.handle, s.one(), b, bias.raw_data(), s.one(), pr.y, y.raw_data()));
  }
}

void conv2d_backward_data(Context& ctx, const Conv2dGeometry& g, const Tensor& dy,
                          const Tensor& weight, const Tensor& dx) {
  Problem pr(ctx, g, dy.dtype());
  int max_count = 0;
  CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(pr.handle, &max_count));
  const Operands o{dx.raw_data(), weight.raw_data(), dy.raw_data()};
  const Choice c = choose<cudnnConvolutionBwdDataAlgoPerf_t>(
      ctx, Pass::kBackwardData, g, dy.dtype(), pr, o, max_count,
      [&](int n, int* got, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
        return cudnnGetConvolutionBackwardDataAlgorithm_v7(pr.handle, pr.w, pr.y, pr.conv, pr.x, n,
                                                           got, perf);
      },
      [&](int n, int* got, cudnnConvolutionBwdDataAlgoPerf_t* perf, void* ws, size_t bytes) {
        return cudnnFindConvolutionBackwardDataAlgorithmEx(pr.handle, pr.w, weight.raw_data(), pr.y,
                                                           dy.raw_data(), pr.conv, pr.x,
                                                           dx.raw_data(), n, got, perf, ws, bytes);
      },
      [&](cudnnConvolutionBwdDataAlgo_t algo, size_t* bytes) {
        return cudnnGetConvolutionBackwardDataWorkspaceSize(pr.handle, pr.w, pr.y, pr.conv, pr.x,
                                                            algo, bytes);
      });
  const Tensor ws = workspace_tensor(ctx, c.workspace);
  const Scale s(dy.dtype());
  check_run(
      cudnnConvolutionBackwardData(pr.handle, s.one(), pr.w, weight.raw_data(), pr.y, dy.raw_data(),
                                   pr.conv, static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo),
                                   ptr(ws), c.workspace, s.zero(), pr.x, dx.raw_data()),
      Pass::kBackwardData, g, dy.dtype(), o, c);
}

void conv2d_backward_filter(Context& ctx, const Conv2dGeometry& g, const Tensor& x,
                            const Tensor& dy, const Tensor& dw) {
  Problem pr(ctx, g, x.dtype());
  int max_count = 0;
  CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(pr.handle, &max_count));
  const Operands o{x.raw_data(), dw.raw_data(), dy.raw_data()};
  const Choice c = choose<cudnnConvolutionBwdFilterAlgoPerf_t>(
      ctx, Pass::kBackwardFilter, g, x.dtype(), pr, o, max_count,
      [&](int n, int* got, cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
        return cudnnGetConvolutionBackwardFilterAlgorithm_v7(pr.handle, pr.x, pr.y, pr.conv, pr.w,
                                                             n, got, perf);
      },
      [&](int n, int* got, cudnnConvolutionBwdFilterAlgoPerf_t* perf, void* ws, size_t bytes) {
        return cudnnFindConvolutionBackwardFilterAlgorithmEx(
            pr.handle, pr.x, x.raw_data(), pr.y, dy.raw_data(), pr.conv, pr.w, dw.raw_data(), n,
            got, perf, ws, bytes);
      },
      [&](cudnnConvolutionBwdFilterAlgo_t algo, size_t* bytes) {
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(pr.handle, pr.x, pr.y, pr.conv, pr.w,
                                                              algo, bytes);
      });
  const Tensor ws = workspace_tensor(ctx, c.workspace);
  const Scale s(x.dtype());
  check_run(
      cudnnConvolutionBackwardFilter(pr.handle, s.one(), pr.x, x.raw_data(), pr.y, dy.raw_data(),
                                     pr.conv, static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo),
                                     ptr(ws), c.workspace, s.zero(), pr.w, dw.raw_data()),
      Pass::kBackwardFilter, g, x.dtype(), o, c);
}

}  // namespace cyclone::kernels::cuda
