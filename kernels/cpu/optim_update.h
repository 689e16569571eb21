// CPU reference implementation of kernels/optim_update.h (arguments already validated).
#pragma once

#include "cyclone/kernels/optim_update.h"

namespace cyclone::kernels::cpu {
void optim_update(Context& ctx, const OptimPlan& plan, const OptimScalars& scalars);
}  // namespace cyclone::kernels::cpu
