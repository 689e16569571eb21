// The fused multi-tensor optimizer kernel (one launch for every parameter of a step) and its
// per-tensor twin, both over the element functions of kernels/optim_math.h.
//
// Work decomposition (PyTorch's multi_tensor_apply, apex's multi_tensor_*): the plan's chunk table
// lists (tensor, chunk) pairs of kOptimChunk elements; block b takes chunks b, b + gridDim.x, ...
// Each chunk reads its tensor's entry (pointers, numel, group, step lag), computes the per-step
// coefficients from the device scalars buffer, and updates its elements with float4 loads and
// stores when every pointer of the tensor is 16-byte aligned (chunk starts are multiples of 4).
// Memory-bound: the traffic is bytes_per_step() of the plan, e.g. 28 B per float32 Adam parameter.
#include <cuda_runtime.h>

#include <type_traits>
#include <vector>

#include "cyclone/core/cuda/check.h"
#include "cyclone/core/cuda/event.h"
#include "cyclone/kernels/cuda/launch.cuh"
#include "cyclone/kernels/cuda/optim_update.h"

namespace cyclone::kernels::cuda {

namespace {

constexpr int kOptimBlock = 256;

// Updates elements [begin, begin + n) of tensor e.
template <OptimAlgo kAlgo, class T>
__device__ __forceinline__ void update_range(const OptimConfig& cfg, const OptimCoeffs<T>& c,
                                             const OptimTensorEntry& e, int64_t begin, int64_t n,
                                             unsigned mask) {
  T* __restrict__ p = static_cast<T*>(e.param) + begin;
  const T* __restrict__ g = static_cast<const T*>(e.grad) + begin;
  T* __restrict__ s0 = (mask & 1u) ? static_cast<T*>(e.state[0]) + begin : nullptr;
  T* __restrict__ s1 = (mask & 2u) ? static_cast<T*>(e.state[1]) + begin : nullptr;
  T* __restrict__ s2 = (mask & 4u) ? static_cast<T*>(e.state[2]) + begin : nullptr;
  int64_t head = 0;  // elements done by the vector loop
  if constexpr (std::is_same_v<T, float>) {
    if (e.aligned) {
      const int64_t n4 = n / 4;
      auto* p4 = reinterpret_cast<float4*>(p);
      auto* g4 = reinterpret_cast<const float4*>(g);
      auto* a4 = reinterpret_cast<float4*>(s0);
      auto* b4 = reinterpret_cast<float4*>(s1);
      auto* d4 = reinterpret_cast<float4*>(s2);
#pragma unroll 2
      for (int64_t i = threadIdx.x; i < n4; i += blockDim.x) {
        float4 vp = p4[i];
        const float4 vg = g4[i];
        const float4 zero = make_float4(0.f, 0.f, 0.f, 0.f);
        float4 va = a4 ? a4[i] : zero, vb = b4 ? b4[i] : zero, vd = d4 ? d4[i] : zero;
        optim_element<kAlgo, float>(cfg, c, vp.x, vg.x, va.x, vb.x, vd.x);
        optim_element<kAlgo, float>(cfg, c, vp.y, vg.y, va.y, vb.y, vd.y);
        optim_element<kAlgo, float>(cfg, c, vp.z, vg.z, va.z, vb.z, vd.z);
        optim_element<kAlgo, float>(cfg, c, vp.w, vg.w, va.w, vb.w, vd.w);
        p4[i] = vp;
        if (a4) a4[i] = va;
        if (b4) b4[i] = vb;
        if (d4) d4[i] = vd;
      }
      head = n4 * 4;
    }
  }
  for (int64_t i = head + threadIdx.x; i < n; i += blockDim.x) {
    T vp = p[i];
    T va = s0 ? s0[i] : T(0), vb = s1 ? s1[i] : T(0), vd = s2 ? s2[i] : T(0);
    optim_element<kAlgo, T>(cfg, c, vp, g[i], va, vb, vd);
    p[i] = vp;
    if (s0) s0[i] = va;
    if (s1) s1[i] = vb;
    if (s2) s2[i] = vd;
  }
}

template <OptimAlgo kAlgo, class T>
__global__ void __launch_bounds__(kOptimBlock)
    fused_kernel(const OptimTensorEntry* __restrict__ tensors,
                 const OptimGroupParams* __restrict__ groups,
                 const OptimChunkEntry* __restrict__ chunks, int64_t num_chunks,
                 const OptimScalars* __restrict__ scalars, const float* __restrict__ gate,
                 OptimConfig cfg, unsigned mask) {
  if (gate != nullptr && !(*gate > 0.f)) return;  // the step was skipped on the device
  const OptimScalars s = *scalars;
  for (int64_t k = blockIdx.x; k < num_chunks; k += gridDim.x) {
    const OptimChunkEntry ch = chunks[k];
    const OptimTensorEntry e = tensors[ch.tensor];
    const OptimCoeffs<T> c = optim_coeffs<T>(cfg, s, groups[e.group], e.step_lag, e.mu_product);
    // NAdam: every chunk read P_{t-1}; the tensor's first chunk stores P_t in the other entry.
    if (e.mu_product != nullptr && ch.chunk == 0 && threadIdx.x == 0)
      optim_store_mu_product(cfg, c, e.mu_product);
    const int64_t begin = int64_t(ch.chunk) * kOptimChunk;
    const int64_t n = e.numel - begin < kOptimChunk ? e.numel - begin : kOptimChunk;
    update_range<kAlgo, T>(cfg, c, e, begin, n, mask);
  }
}

// One tensor, its entry and group by value: blocks take chunks of it as the fused kernel does.
template <OptimAlgo kAlgo, class T>
__global__ void __launch_bounds__(kOptimBlock)
    single_kernel(OptimTensorEntry e, OptimGroupParams group,
                  const OptimScalars* __restrict__ scalars, const float* __restrict__ gate,
                  OptimConfig cfg, unsigned mask) {
  if (gate != nullptr && !(*gate > 0.f)) return;
  const OptimCoeffs<T> c = optim_coeffs<T>(cfg, *scalars, group, e.step_lag, e.mu_product);
  if (e.mu_product != nullptr && blockIdx.x == 0 && threadIdx.x == 0)
    optim_store_mu_product(cfg, c, e.mu_product);
  const int64_t num_chunks = (e.numel + kOptimChunk - 1) / kOptimChunk;
  for (int64_t k = blockIdx.x; k < num_chunks; k += gridDim.x) {
    const int64_t begin = k * kOptimChunk;
    const int64_t n = e.numel - begin < kOptimChunk ? e.numel - begin : kOptimChunk;
    update_range<kAlgo, T>(cfg, c, e, begin, n, mask);
  }
}

int grid_for_chunks(int64_t chunks) {
  return static_cast<int>(std::clamp<int64_t>(chunks, 1, int64_t{1} << 30));
}

// The pinned ring behind OptimScalarsBuffer::upload: the host never rewrites a slot whose copy
// may still be pending (each slot's event is waited for before reuse; with kRing slots that wait
// is almost always already satisfied).
constexpr int kRing = 64;

class ScopedDevice {
 public:
  explicit ScopedDevice(int device) {
    CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device)
      CUDA_CHECK(cudaSetDevice(device));
    else
      previous_ = -1;
  }
  ~ScopedDevice() {
    if (previous_ >= 0) (void)cudaSetDevice(previous_);
  }
  ScopedDevice(const ScopedDevice&) = delete;
  ScopedDevice& operator=(const ScopedDevice&) = delete;

 private:
  int previous_ = -1;
};

struct ScalarsStaging {
  explicit ScalarsStaging(int dev) : device(dev) {
    ScopedDevice guard(dev);
    ring = Tensor::empty_pinned(
        Shape{static_cast<int64_t>(kRing * sizeof(OptimScalars) / sizeof(double))},
        DType::kFloat64);
    events.reserve(kRing);
    for (int i = 0; i < kRing; ++i) events.emplace_back(/*timing=*/false);
    used.assign(kRing, false);
  }
  int device;
  Tensor ring;
  std::vector<Event> events;
  std::vector<bool> used;
  int next = 0;
};

}  // namespace

void optim_update(Context& ctx, const OptimPlan& plan, const OptimScalars* scalars,
                  const float* gate) {
  const OptimConfig cfg = plan.config();
  const unsigned mask = optim_slot_mask(cfg);
  const auto* base = static_cast<const uint8_t*>(plan.device_table().raw_data());
  const auto* tensors = reinterpret_cast<const OptimTensorEntry*>(base);
  const auto* groups = reinterpret_cast<const OptimGroupParams*>(base + plan.groups_offset());
  const auto* chunks = reinterpret_cast<const OptimChunkEntry*>(base + plan.chunks_offset());
  const int64_t n = plan.num_chunks();
  CYCLONE_DISPATCH_FLOAT(plan.dtype(), T, [&] {
    dispatch_optim(cfg.algo, [&]<OptimAlgo kAlgo>() {
      fused_kernel<kAlgo, T><<<grid_for_chunks(n), kOptimBlock, 0, stream_of(ctx)>>>(
          tensors, groups, chunks, n, scalars, gate, cfg, mask);
    });
  });
  gpu::check_launch("optim_update (fused)", ctx.stream());
}

void optim_update_per_tensor(Context& ctx, const OptimPlan& plan, const OptimScalars* scalars,
                             const float* gate) {
  const OptimConfig cfg = plan.config();
  const unsigned mask = optim_slot_mask(cfg);
  for (const OptimTensorArgs& t : plan.tensors()) {
    OptimTensorEntry e{};
    e.param = t.param.raw_data();
    e.grad = t.grad.raw_data();
    bool aligned = plan.dtype() == DType::kFloat32 &&
                   reinterpret_cast<uintptr_t>(e.param) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(e.grad) % 16 == 0;
    for (int s = 0; s < kOptimMaxSlots; ++s) {
      e.state[s] = (mask & (1u << s)) ? t.state[s].raw_data() : nullptr;
      if (e.state[s] != nullptr)
        aligned = aligned && reinterpret_cast<uintptr_t>(e.state[s]) % 16 == 0;
    }
    e.mu_product =
        optim_has_mu_product(cfg) ? static_cast<double*>(t.mu_product.raw_data()) : nullptr;
    e.numel = t.param.numel();
    e.step_lag = t.step_lag;
    e.group = t.group;
    e.aligned = aligned ? 1 : 0;
    if (e.numel == 0 && e.mu_product == nullptr) continue;  // NAdam still advances its product
    const OptimGroupParams group = plan.groups()[static_cast<size_t>(t.group)];
    const int grid = grid_for_chunks((e.numel + kOptimChunk - 1) / kOptimChunk);
    CYCLONE_DISPATCH_FLOAT(plan.dtype(), T, [&] {
      dispatch_optim(cfg.algo, [&]<OptimAlgo kAlgo>() {
        single_kernel<kAlgo, T>
            <<<grid, kOptimBlock, 0, stream_of(ctx)>>>(e, group, scalars, gate, cfg, mask);
      });
    });
    gpu::check_launch("optim_update (per tensor)", ctx.stream());
  }
}

std::shared_ptr<void> make_scalars_staging(int device) {
  return std::make_shared<ScalarsStaging>(device);
}

void upload_scalars(Context& ctx, void* staging, const OptimScalars& host, OptimScalars* dst) {
  auto& st = *static_cast<ScalarsStaging*>(staging);
  const int slot = st.next;
  st.next = (st.next + 1) % kRing;
  ScopedDevice guard(st.device);
  if (st.used[static_cast<size_t>(slot)]) st.events[static_cast<size_t>(slot)].synchronize();
  OptimScalars* src = reinterpret_cast<OptimScalars*>(st.ring.raw_data()) + slot;
  *src = host;
  CUDA_CHECK(
      cudaMemcpyAsync(dst, src, sizeof(OptimScalars), cudaMemcpyHostToDevice, stream_of(ctx)));
  st.events[static_cast<size_t>(slot)].record(stream_of(ctx));
  st.used[static_cast<size_t>(slot)] = true;
}

}  // namespace cyclone::kernels::cuda
