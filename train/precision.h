// The math a run computes in (--precision, trainer.precision):
//   fp32 (the default): IEEE float32 everywhere;
//   tf32: float32 data, TF32 tensor cores for GEMMs and convolutions on the GPU (10-bit mantissa
//         inputs, float32 accumulation; PyTorch's allow_tf32); no effect on the CPU;
//   bf16: mixed precision (layers/autocast.h): convolutions and matrix products in bfloat16 with
//         float32 accumulation; the master weights, the optimizer state, batch norm, the loss and
//         everything else float32. On the CPU the bf16 operands are widened to float32 for BLAS,
//         so bf16 there is slower, never faster: it exists to check the numerics.
//   fp16: the same with float16 (5-bit exponent: more mantissa than bfloat16, far less range) and
//         dynamic loss scaling (torch.cuda.amp.GradScaler's rule: the backward starts from
//         loss * S, S = 2^16 at first, halved and the step skipped when the scaled gradients
//         overflow, doubled after 2000 good steps in a row; kernels/step_guard.h on the device,
//         train::LossScaler on the host path).
#pragma once

#include <optional>
#include <string_view>

#include "cyclone/core/device.h"
#include "cyclone/layers/module.h"

namespace cyclone::train {

enum class Precision { kFp32, kTf32, kBf16, kFp16 };

// "fp32" | "tf32" | "bf16" | "fp16" (also "float32", "tensorfloat32", "bfloat16", "float16");
// nullopt otherwise.
std::optional<Precision> parse_precision(std::string_view name);
const char* precision_name(Precision p);
// "fp32, tf32, bf16, fp16": for error messages and help.
const char* precision_choices();

// Makes `model` and the calling thread's context of `device` compute in p.
void apply_precision(Module& model, Device device, Precision p);

}  // namespace cyclone::train
