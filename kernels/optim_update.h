// Fused multi-tensor optimizer updates (no autograd): one call updates every parameter of a step
// in place, with the math of kernels/optim_math.h (formulas and costs there). The optim/ classes
// drive these; the benchmark calls them directly.
//
// - OptimPlan describes one launch: the tensors (param, grad, state slots) of one device and one
//   dtype, the parameter groups, the algorithm's options. On CUDA it holds, in device memory from
//   the caching allocator, the per-tensor table {pointers, numel, group, step lag}, the group
//   table, and a block-to-(tensor, chunk) table in the manner of PyTorch's multi_tensor_apply /
//   apex: each chunk of up to kOptimChunk elements of one tensor is one unit of work. Build a plan
//   once and reuse it while the tensors' storage is unchanged (building it copies the tables to
//   the device and waits for that copy).
//   NAdam's tensors also carry their mu product pair (OptimTensorArgs::mu_product).
// - OptimScalarsBuffer holds the step's scalars (OptimScalars) on the host and, per CUDA device,
//   in a device buffer written by a stream-ordered copy from pinned memory. The fused kernel reads
//   the device copy, so a CUDA graph that captured optim_update() replays with whatever
//   upload() last wrote. The CPU path reads the host copy.
// - optim_update_per_tensor() runs the same math with one launch per tensor: the unfused baseline
//   the benchmark compares against.
//
// Cost per step: the sum over tensors of the per-element bytes of optim_math.h (float32 Adam:
// 28 bytes per parameter), and on CUDA one kernel launch.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "cyclone/core/context.h"
#include "cyclone/core/tensor.h"
#include "cyclone/kernels/optim_math.h"

namespace cyclone::kernels {

// Elements per unit of work of the fused CUDA kernel (a multiple of 4 so float4 loads stay
// aligned from one chunk to the next).
inline constexpr int64_t kOptimChunk = 1 << 15;

// Units of work of a tensor of `numel` elements: at least one under NAdam, whose first chunk
// advances the tensor's mu product even when the tensor has no elements (as PyTorch's does).
inline int64_t optim_num_chunks(const OptimConfig& cfg, int64_t numel) {
  const int64_t n = (numel + kOptimChunk - 1) / kOptimChunk;
  return n == 0 && optim_has_mu_product(cfg) ? 1 : n;
}

// One parameter of a fused update. Unused slots (see optim_slot_mask) stay undefined.
struct OptimTensorArgs {
  Tensor param;
  Tensor grad;
  std::array<Tensor, kOptimMaxSlots> state;
  // NAdam (optim_has_mu_product): the float64 pair {P at even t, P at odd t} on the parameter's
  // device that the update reads and advances (optim_math.h); undefined otherwise.
  Tensor mu_product;
  int32_t group = 0;    // index into the plan's groups
  double step_lag = 0;  // optimizer steps this parameter had no gradient in
};

class OptimPlan {
 public:
  OptimPlan() = default;
  // Validates every tensor (same device and float dtype, grad and state of the param's shape,
  // group index in range; errors name the tensor's position) and builds the device tables.
  OptimPlan(const OptimConfig& config, std::vector<OptimGroupParams> groups,
            std::vector<OptimTensorArgs> tensors);

  bool empty() const { return tensors_.empty(); }
  Device device() const { return device_; }
  DType dtype() const { return dtype_; }
  const OptimConfig& config() const { return config_; }
  const std::vector<OptimGroupParams>& groups() const { return groups_; }
  const std::vector<OptimTensorArgs>& tensors() const { return tensors_; }
  int64_t numel() const { return numel_; }
  int64_t num_chunks() const { return num_chunks_; }
  // Bytes one update reads and writes (params, grads, state): the benchmark's traffic.
  double bytes_per_step() const;

  // CUDA tables (device memory, bytes): tensor entries, then groups, then chunks.
  const Tensor& device_table() const { return table_; }
  int64_t groups_offset() const { return groups_offset_; }
  int64_t chunks_offset() const { return chunks_offset_; }

 private:
  Device device_;
  DType dtype_ = DType::kFloat32;
  OptimConfig config_;
  std::vector<OptimGroupParams> groups_;
  std::vector<OptimTensorArgs> tensors_;
  int64_t numel_ = 0;
  int64_t num_chunks_ = 0;
  Tensor table_;
  int64_t groups_offset_ = 0;
  int64_t chunks_offset_ = 0;
};

class OptimScalarsBuffer {
 public:
  OptimScalarsBuffer();
  ~OptimScalarsBuffer();
  OptimScalarsBuffer(const OptimScalarsBuffer&) = delete;
  OptimScalarsBuffer& operator=(const OptimScalarsBuffer&) = delete;

  const OptimScalars& host() const { return host_; }
  void set(const OptimScalars& s) { host_ = s; }
  // Enqueues a copy of host() to `ctx`'s device buffer on ctx's stream (nothing on the CPU). The
  // host values are staged in pinned memory first, so set() may be called again at once.
  void upload(Context& ctx);
  // The device buffer of `device` (created on first use; contents are what upload() last wrote).
  const OptimScalars* device_ptr(Device device);

 private:
  struct PerDevice {
    Tensor buffer;                  // sizeof(OptimScalars) bytes on the device
    std::shared_ptr<void> staging;  // pinned ring and events (kernels/cuda/optim_update.cu)
  };
  PerDevice& per_device(Device device);
  OptimScalars host_;
  std::vector<PerDevice> devices_;  // by CUDA device index
};

// The fused update: every tensor of `plan` in one pass (one kernel launch on CUDA), reading the
// step's scalars from `scalars` (its device buffer on CUDA: upload() first). `gate`, when defined,
// is one float32 element on the plan's device, read when the update runs: zero (or NaN) makes the
// update a no-op, so a step whose gradients turned out non-finite is skipped without the host
// looking (kernels/step_guard.h writes it).
void optim_update(Context& ctx, const OptimPlan& plan, OptimScalarsBuffer& scalars,
                  const Tensor& gate = Tensor());
// The same update with one launch per tensor (the unfused baseline).
void optim_update_per_tensor(Context& ctx, const OptimPlan& plan, OptimScalarsBuffer& scalars,
                             const Tensor& gate = Tensor());

}  // namespace cyclone::kernels
