#include "cyclone/train/precision.h"

#include "cyclone/core/context.h"

namespace cyclone::train {

std::optional<Precision> parse_precision(std::string_view name) {
  if (name == "fp32" || name == "float32") return Precision::kFp32;
  if (name == "tf32" || name == "tensorfloat32") return Precision::kTf32;
  if (name == "bf16" || name == "bfloat16") return Precision::kBf16;
  if (name == "fp16" || name == "float16") return Precision::kFp16;
  return std::nullopt;
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::kFp32:
      return "fp32";
    case Precision::kTf32:
      return "tf32";
    case Precision::kBf16:
      return "bf16";
    case Precision::kFp16:
      return "fp16";
  }
  return "?";
}

const char* precision_choices() { return "fp32, tf32, bf16, fp16"; }

void apply_precision(Module& model, Device device, Precision p) {
  model.set_compute_dtype(p == Precision::kBf16   ? DType::kBFloat16
                          : p == Precision::kFp16 ? DType::kFloat16
                                                  : DType::kFloat32);
  Context::current(device).set_allow_tf32(p == Precision::kTf32);
}

}  // namespace cyclone::train
