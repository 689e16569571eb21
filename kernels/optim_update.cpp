#include "cyclone/kernels/optim_update.h"

#include <cstring>

#include "cyclone/kernels/cpu/optim_update.h"
#include "cyclone/kernels/cuda/optim_update.h"

namespace cyclone::kernels {

namespace {

constexpr const char* kSlotNames[kOptimMaxSlots] = {"state slot 0", "state slot 1", "state slot 2"};

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

}  // namespace

OptimPlan::OptimPlan(const OptimConfig& config, std::vector<OptimGroupParams> groups,
                     std::vector<OptimTensorArgs> tensors)
    : config_(config), groups_(std::move(groups)), tensors_(std::move(tensors)) {
  CYCLONE_CHECK(!groups_.empty(), "optimizer plan: no parameter groups");
  const unsigned mask = optim_slot_mask(config_);
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const OptimTensorArgs& t = tensors_[i];
    CYCLONE_CHECK(t.param.defined() && t.grad.defined(), "optimizer plan: tensor ", i,
                  " has an undefined parameter or gradient");
    if (i == 0) {
      device_ = t.param.device();
      dtype_ = t.param.dtype();
      CYCLONE_CHECK(dtype_ == DType::kFloat32 || dtype_ == DType::kFloat64,
                    "optimizer plan: parameters must be float32 or float64, got ",
                    dtype_name(dtype_));
    }
    CYCLONE_CHECK(t.param.device() == device_ && t.param.dtype() == dtype_,
                  "optimizer plan: tensor ", i, " is ", dtype_name(t.param.dtype()), " on ",
                  t.param.device(), " but the plan is ", dtype_name(dtype_), " on ", device_,
                  " (one plan per device and dtype)");
    check_same_shape("optimizer plan (gradient)", t.param, t.grad);
    check_same_dtype("optimizer plan (gradient)", t.param, t.grad);
    check_same_device("optimizer plan (gradient)", t.param, t.grad);
    for (int s = 0; s < kOptimMaxSlots; ++s) {
      if (!(mask & (1u << s))) continue;
      CYCLONE_CHECK(t.state[s].defined(), "optimizer plan: tensor ", i, " lacks its ",
                    kSlotNames[s]);
      check_same_shape("optimizer plan (state)", t.param, t.state[s]);
      check_same_dtype("optimizer plan (state)", t.param, t.state[s]);
      check_same_device("optimizer plan (state)", t.param, t.state[s]);
    }
    if (optim_has_mu_product(config_)) {
      CYCLONE_CHECK(t.mu_product.defined(), "optimizer plan: tensor ", i,
                    " lacks its mu product pair");
      CYCLONE_CHECK(t.mu_product.dtype() == DType::kFloat64 && t.mu_product.numel() == 2 &&
                        t.mu_product.device() == device_,
                    "optimizer plan: the mu product pair of tensor ", i, " is ",
                    dtype_name(t.mu_product.dtype()), " ", t.mu_product.shape(), " on ",
                    t.mu_product.device(), ", expected float64 [2] on ", device_);
    }
    CYCLONE_CHECK(t.group >= 0 && t.group < static_cast<int32_t>(groups_.size()),
                  "optimizer plan: tensor ", i, " names group ", t.group, " of ", groups_.size());
    numel_ += t.param.numel();
    num_chunks_ += optim_num_chunks(config_, t.param.numel());
  }
  if (tensors_.empty() || !device_.is_cuda()) return;

  // One device allocation: [tensor entries][groups][chunks], each part 16-byte aligned.
  CYCLONE_CHECK(tensors_.size() < (size_t{1} << 31) && num_chunks_ < (int64_t{1} << 31),
                "optimizer plan: too many tensors or chunks for one launch");
  std::vector<OptimTensorEntry> entries(tensors_.size());
  std::vector<OptimChunkEntry> chunks;
  chunks.reserve(static_cast<size_t>(num_chunks_));
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const OptimTensorArgs& t = tensors_[i];
    OptimTensorEntry& e = entries[i];
    e.param = t.param.raw_data();
    e.grad = t.grad.raw_data();
    bool aligned = dtype_ == DType::kFloat32 && aligned16(e.param) && aligned16(e.grad);
    for (int s = 0; s < kOptimMaxSlots; ++s) {
      e.state[s] = (mask & (1u << s)) ? t.state[s].raw_data() : nullptr;
      if (e.state[s] != nullptr) aligned = aligned && aligned16(e.state[s]);
    }
    e.mu_product =
        optim_has_mu_product(config_) ? static_cast<double*>(t.mu_product.raw_data()) : nullptr;
    e.numel = t.param.numel();
    e.step_lag = t.step_lag;
    e.group = t.group;
    e.aligned = aligned ? 1 : 0;
    const int64_t n_chunks = optim_num_chunks(config_, e.numel);
    for (int64_t c = 0; c < n_chunks; ++c)
      chunks.push_back({static_cast<int32_t>(i), static_cast<int32_t>(c)});
  }
  groups_offset_ = round_up(static_cast<int64_t>(entries.size() * sizeof(OptimTensorEntry)), 16);
  chunks_offset_ = groups_offset_ +
                   round_up(static_cast<int64_t>(groups_.size() * sizeof(OptimGroupParams)), 16);
  const int64_t total =
      chunks_offset_ + static_cast<int64_t>(chunks.size() * sizeof(OptimChunkEntry));
  std::vector<uint8_t> bytes(static_cast<size_t>(total), 0);
  std::memcpy(bytes.data(), entries.data(), entries.size() * sizeof(OptimTensorEntry));
  std::memcpy(bytes.data() + groups_offset_, groups_.data(),
              groups_.size() * sizeof(OptimGroupParams));
  std::memcpy(bytes.data() + chunks_offset_, chunks.data(),
              chunks.size() * sizeof(OptimChunkEntry));
  table_ = Tensor::from_host(bytes.data(), Shape{total}, DType::kUInt8, device_);
}

double OptimPlan::bytes_per_step() const {
  int slots = 0;
  for (unsigned m = optim_slot_mask(config_); m != 0; m >>= 1) slots += m & 1u;
  // param read + write, grad read, each state slot read + write.
  return static_cast<double>(numel_) * static_cast<double>(dtype_size(dtype_)) * (3 + 2 * slots);
}

OptimScalarsBuffer::OptimScalarsBuffer() = default;
OptimScalarsBuffer::~OptimScalarsBuffer() = default;

OptimScalarsBuffer::PerDevice& OptimScalarsBuffer::per_device(Device device) {
  CYCLONE_CHECK(device.is_cuda(), "optimizer scalars: a device buffer is for CUDA devices, not ",
                device);
  const size_t i = static_cast<size_t>(device.index);
  if (devices_.size() <= i) devices_.resize(i + 1);
  PerDevice& d = devices_[i];
  if (!d.buffer.defined()) {
    static_assert(sizeof(OptimScalars) % sizeof(double) == 0);
    d.buffer = Tensor::zeros(Shape{static_cast<int64_t>(sizeof(OptimScalars) / sizeof(double))},
                             DType::kFloat64, device);
    d.staging = cuda::make_scalars_staging(device.index);
  }
  return d;
}

void OptimScalarsBuffer::upload(Context& ctx) {
  if (!ctx.device().is_cuda()) return;
  PerDevice& d = per_device(ctx.device());
  cuda::upload_scalars(ctx, d.staging.get(), host_,
                       static_cast<OptimScalars*>(d.buffer.raw_data()));
}

const OptimScalars* OptimScalarsBuffer::device_ptr(Device device) {
  return static_cast<const OptimScalars*>(per_device(device).buffer.raw_data());
}

namespace {

// The gate's device pointer (null when undefined), after checking it.
const float* gate_ptr(const char* op, const OptimPlan& plan, const Tensor& gate) {
  if (!gate.defined()) return nullptr;
  CYCLONE_CHECK(
      gate.numel() == 1 && gate.dtype() == DType::kFloat32 && gate.device() == plan.device(), op,
      ": the gate must be one float32 element on ", plan.device(), ", got ",
      dtype_name(gate.dtype()), " ", gate.shape(), " on ", gate.device());
  return gate.data<float>();
}

bool gate_open_on_host(const float* gate) { return gate == nullptr || *gate > 0.f; }

}  // namespace

void optim_update(Context& ctx, const OptimPlan& plan, OptimScalarsBuffer& scalars,
                  const Tensor& gate) {
  if (plan.empty()) return;
  CYCLONE_CHECK(ctx.device() == plan.device(), "optim_update: context of ", ctx.device(),
                " for parameters on ", plan.device());
  const float* g = gate_ptr("optim_update", plan, gate);
  if (plan.device().is_cuda())
    return cuda::optim_update(ctx, plan, scalars.device_ptr(plan.device()), g);
  if (gate_open_on_host(g)) cpu::optim_update(ctx, plan, scalars.host());
}

void optim_update_per_tensor(Context& ctx, const OptimPlan& plan, OptimScalarsBuffer& scalars,
                             const Tensor& gate) {
  if (plan.empty()) return;
  CYCLONE_CHECK(ctx.device() == plan.device(), "optim_update_per_tensor: context of ", ctx.device(),
                " for parameters on ", plan.device());
  const float* g = gate_ptr("optim_update_per_tensor", plan, gate);
  if (plan.device().is_cuda())
    return cuda::optim_update_per_tensor(ctx, plan, scalars.device_ptr(plan.device()), g);
  if (gate_open_on_host(g)) cpu::optim_update(ctx, plan, scalars.host());  // per tensor already
}

}  // namespace cyclone::kernels
