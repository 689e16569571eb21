// One thread: the step's bookkeeping is a handful of scalars, and keeping it on the device is what
// lets a captured step run without a host read (kernels/step_guard.h).
#include "cyclone/kernels/cuda/launch.cuh"
#include "cyclone/kernels/cuda/step_guard.h"

namespace cyclone::kernels::cuda {

namespace {

template <class L>
__global__ void step_guard_kernel(StepGuardConfig cfg, const L* loss, const float* grad_sq,
                                  const int32_t* correct, double* state, float* gate, float* scale,
                                  float* loss_scale) {
  step_guard_update(cfg, static_cast<double>(*loss), grad_sq ? *grad_sq : 0.0,
                    correct ? static_cast<double>(*correct) : 0.0, state, gate, scale, loss_scale);
}

}  // namespace

void step_guard(Context& ctx, const StepGuardConfig& cfg, const Tensor& loss, const Tensor& grad_sq,
                const Tensor& correct, const Tensor& state, const Tensor& gate, const Tensor& scale,
                const Tensor& loss_scale) {
  float* ls = loss_scale.defined() ? loss_scale.data<float>() : nullptr;
  const float* g = grad_sq.defined() ? grad_sq.data<float>() : nullptr;
  const int32_t* c = correct.defined() ? correct.data<int32_t>() : nullptr;
  if (loss.dtype() == DType::kFloat64)
    step_guard_kernel<<<1, 1, 0, stream_of(ctx)>>>(cfg, loss.data<double>(), g, c,
                                                   state.data<double>(), gate.data<float>(),
                                                   scale.data<float>(), ls);
  else
    step_guard_kernel<<<1, 1, 0, stream_of(ctx)>>>(cfg, loss.data<float>(), g, c,
                                                   state.data<double>(), gate.data<float>(),
                                                   scale.data<float>(), ls);
  gpu::check_launch("step_guard", ctx.stream());
}

}  // namespace cyclone::kernels::cuda
