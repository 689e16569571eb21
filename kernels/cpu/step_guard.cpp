#include "cyclone/kernels/cpu/step_guard.h"

namespace cyclone::kernels::cpu {

void step_guard(Context&, const StepGuardConfig& cfg, const Tensor& loss, const Tensor& grad_sq,
                const Tensor& correct, const Tensor& state, const Tensor& gate, const Tensor& scale,
                const Tensor& loss_scale) {
  const double l = loss.dtype() == DType::kFloat64 ? *loss.data<double>() : *loss.data<float>();
  const double g = grad_sq.defined() ? *grad_sq.data<float>() : 0.0;
  const double c = correct.defined() ? *correct.data<int32_t>() : 0.0;
  step_guard_update(cfg, l, g, c, state.data<double>(), gate.data<float>(), scale.data<float>(),
                    loss_scale.defined() ? loss_scale.data<float>() : nullptr);
}

}  // namespace cyclone::kernels::cpu
