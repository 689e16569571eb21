#include "cyclone/kernels/step_guard.h"

#include <limits>

#include "cyclone/kernels/cpu/step_guard.h"
#include "cyclone/kernels/cuda/step_guard.h"

namespace cyclone::kernels {

namespace {

// float32, or also float64 where `or_double` (the loss). A 16-bit loss is refused here, with the
// fix, rather than by a dtype error deep in either backend: both read float32 or float64 only.
void check_one(const char* what, const Tensor& t, Device device, bool or_double) {
  CYCLONE_CHECK(t.numel() == 1, "step_guard: ", what, " must have one element, got ", t.shape());
  CYCLONE_CHECK(t.device() == device, "step_guard: ", what, " is on ", t.device(),
                ", the state on ", device);
  const bool ok = t.dtype() == DType::kFloat32 || (or_double && t.dtype() == DType::kFloat64);
  CYCLONE_CHECK(ok, "step_guard: ", what, " has dtype ", dtype_name(t.dtype()), ", needs float32",
                or_double ? " or float64 (compute the loss in float32, as a model with a 16-bit "
                            "compute dtype returns its output)"
                          : "");
}

}  // namespace

Tensor step_guard_state(int64_t window, Device device) {
  CYCLONE_CHECK(window >= 1 && window <= (int64_t{1} << 20), "step_guard: window ", window,
                " outside [1, 2^20]");
  std::vector<double> v(static_cast<size_t>(kStepGuardHeader + kStepGuardFields * window), 0.0);
  v[kGuardPow] = 1;
  v[kGuardBest] = std::numeric_limits<double>::infinity();
  return Tensor::from_vector(v, {static_cast<int64_t>(v.size())}, device);
}

void step_guard(Context& ctx, const StepGuardConfig& cfg, const Tensor& loss, const Tensor& grad_sq,
                const Tensor& correct, const Tensor& state, const Tensor& gate, const Tensor& scale,
                const Tensor& loss_scale) {
  CYCLONE_CHECK(state.dtype() == DType::kFloat64 &&
                    state.numel() == kStepGuardHeader + kStepGuardFields * cfg.window,
                "step_guard: the state of ", state.shape(), " ", dtype_name(state.dtype()),
                " does not match a window of ", cfg.window, " (make it with step_guard_state)");
  const Device device = state.device();
  check_one("loss", loss, device, true);
  if (grad_sq.defined()) check_one("grad_sq", grad_sq, device, false);
  if (correct.defined()) {
    CYCLONE_CHECK(
        correct.numel() == 1 && correct.dtype() == DType::kInt32 && correct.device() == device,
        "step_guard: correct must be one int32 element on ", device);
  }
  check_one("gate", gate, device, false);
  check_one("scale", scale, device, false);
  if (cfg.loss_scaling) {
    CYCLONE_CHECK(loss_scale.defined(), "step_guard: loss scaling needs a loss_scale tensor");
    check_one("loss_scale", loss_scale, device, false);
    CYCLONE_CHECK(cfg.loss_scale.init_scale > 0 && cfg.loss_scale.growth_factor >= 1 &&
                      cfg.loss_scale.backoff_factor > 0 && cfg.loss_scale.backoff_factor < 1 &&
                      cfg.loss_scale.growth_interval >= 1,
                  "step_guard: bad loss scaling (init ", cfg.loss_scale.init_scale, ", growth ",
                  cfg.loss_scale.growth_factor, ", backoff ", cfg.loss_scale.backoff_factor,
                  ", interval ", cfg.loss_scale.growth_interval, ")");
  }
  CYCLONE_CHECK(ctx.device() == device, "step_guard: context of ", ctx.device(), " for ", device);
  const Tensor ls = cfg.loss_scaling ? loss_scale : Tensor();
  if (device.is_cuda())
    return cuda::step_guard(ctx, cfg, loss, grad_sq, correct, state, gate, scale, ls);
  cpu::step_guard(ctx, cfg, loss, grad_sq, correct, state, gate, scale, ls);
}

}  // namespace cyclone::kernels
