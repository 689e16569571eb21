#include "cyclone/core/dtype.h"

#include "cyclone/core/error.h"

namespace cyclone {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::kFloat32:
      return "float32";
    case DType::kFloat64:
      return "float64";
    case DType::kInt32:
      return "int32";
    case DType::kUInt8:
      return "uint8";
    case DType::kBFloat16:
      return "bfloat16";
    case DType::kFloat16:
      return "float16";
  }
  return "?";
}

DType parse_dtype(std::string_view s) {
  if (s == "float32" || s == "f32" || s == "float") return DType::kFloat32;
  if (s == "float64" || s == "f64" || s == "double") return DType::kFloat64;
  if (s == "int32" || s == "i32") return DType::kInt32;
  if (s == "uint8" || s == "u8") return DType::kUInt8;
  if (s == "bfloat16" || s == "bf16") return DType::kBFloat16;
  if (s == "float16" || s == "f16" || s == "half") return DType::kFloat16;
  CYCLONE_THROW("unknown dtype '", s,
                "' (expected float32, float64, int32, uint8, bfloat16, float16)");
}

}  // namespace cyclone
