// Finite-difference gradient checker (Caffe's GradientChecker, PyTorch's gradcheck in spirit).
//
// For f: inputs -> y it draws a fixed random projection w and compares, for every element x_j of
// every input that requires grad, the analytic dL/dx_j from backward() with the central difference
// (L(x_j + eps) - L(x_j - eps)) / 2eps of L = sum(w * y), accumulated in double. Elements that sit
// on a kink (ReLU at 0, max-pool ties), where the one-sided differences disagree, are skipped and
// counted. Inputs must be float64 tensors (float32 differences are too coarse to check), on any
// device: a CUDA input is perturbed one element at a time through a copy to the device.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cyclone/core/tensor.h"

namespace cyclone {

struct GradCheckOptions {
  double eps = 1e-6;
  double atol = 1e-6;
  double rtol = 1e-4;
  uint64_t seed = 1234;  // of the projection w
};

struct GradCheckResult {
  bool ok = true;
  std::string message = {};  // the first failures: input, element, analytic vs numeric
  int64_t checked = 0;
  int64_t skipped_kinks = 0;
  double max_abs_error = 0;
};

using GradFn = std::function<Tensor(const std::vector<Tensor>&)>;

GradCheckResult gradcheck(const GradFn& f, const std::vector<Tensor>& inputs,
                          const GradCheckOptions& options = {});

}  // namespace cyclone
