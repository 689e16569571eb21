// CUDA implementations of kernels/optim_update.h (arguments already validated), and the layout of
// the device tables an OptimPlan builds (plain structs, shared with kernels/optim_update.cpp).
#pragma once

#include <cstdint>
#include <memory>

#include "cyclone/core/cuda_decl.h"
#include "cyclone/kernels/optim_update.h"

namespace cyclone::kernels {

// One tensor of a fused update, as the kernel reads it. Unused state slots are null.
struct OptimTensorEntry {
  void* param;
  const void* grad;
  void* state[kOptimMaxSlots];
  double* mu_product;  // NAdam's pair (optim_math.h), else null
  int64_t numel;
  double step_lag;
  int32_t group;
  int32_t aligned;  // every pointer 16-byte aligned: float4 loads and stores
};

// One unit of work: chunk `chunk` (kOptimChunk elements) of tensor `tensor`.
struct OptimChunkEntry {
  int32_t tensor;
  int32_t chunk;
};

namespace cuda {
// `gate`: null, or one device float read by every block: the update is made only when positive.
CYCLONE_CUDA_FN(void optim_update(Context& ctx, const OptimPlan& plan, const OptimScalars* scalars,
                                  const float* gate))
CYCLONE_CUDA_FN(void optim_update_per_tensor(Context& ctx, const OptimPlan& plan,
                                             const OptimScalars* scalars, const float* gate))
// Pinned staging ring for OptimScalarsBuffer::upload on `device`.
CYCLONE_CUDA_FN(std::shared_ptr<void> make_scalars_staging(int device))
// Stages `host` in the ring and enqueues its copy to `dst` on ctx's stream.
CYCLONE_CUDA_FN(void upload_scalars(Context& ctx, void* staging, const OptimScalars& host,
                                    OptimScalars* dst))
}  // namespace cuda
}  // namespace cyclone::kernels
