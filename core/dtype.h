// Element types. float32 is the type of math; float64 serves gradient checks and references;
// uint8 and int32 carry data and labels; bfloat16 (core/bfloat16.h) and float16 (core/float16.h)
// store the operands and activations of mixed precision (layers/autocast.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "cyclone/core/bfloat16.h"
#include "cyclone/core/float16.h"

namespace cyclone {

enum class DType : uint8_t { kFloat32, kFloat64, kInt32, kUInt8, kBFloat16, kFloat16 };

constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::kFloat64:
      return 8;
    case DType::kFloat32:
    case DType::kInt32:
      return 4;
    case DType::kBFloat16:
    case DType::kFloat16:
      return 2;
    case DType::kUInt8:
      return 1;
  }
  return 0;
}

const char* dtype_name(DType t);
DType parse_dtype(std::string_view name);  // "float32", "f32", ... throws on unknown
constexpr bool is_floating(DType t) { return t != DType::kInt32 && t != DType::kUInt8; }

template <class T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::kFloat32;
};
template <>
struct DTypeOf<double> {
  static constexpr DType value = DType::kFloat64;
};
template <>
struct DTypeOf<bfloat16> {
  static constexpr DType value = DType::kBFloat16;
};
template <>
struct DTypeOf<float16> {
  static constexpr DType value = DType::kFloat16;
};
template <>
struct DTypeOf<int32_t> {
  static constexpr DType value = DType::kInt32;
};
template <>
struct DTypeOf<uint8_t> {
  static constexpr DType value = DType::kUInt8;
};
template <class T>
inline constexpr DType dtype_of = DTypeOf<T>::value;

// The 16-bit floats: stored, never computed in.
constexpr bool is_half(DType t) { return t == DType::kBFloat16 || t == DType::kFloat16; }
template <class T>
inline constexpr bool is_half_v = std::is_same_v<T, bfloat16> || std::is_same_v<T, float16>;

// The type a kernel computes in for elements stored as T: float for bfloat16 and float16, T
// otherwise. It is also the dtype of the per-channel parameters (batch norm's weight, statistics)
// beside 16-bit activations.
template <class T>
using math_t = std::conditional_t<is_half_v<T>, float, T>;
// The dtype of math_t for elements of dtype t.
constexpr DType math_dtype(DType t) { return is_half(t) ? DType::kFloat32 : t; }

}  // namespace cyclone

// One case of the dispatch macros below: runs the body with T = type.
#define CYCLONE_DTYPE_CASE(enumerator, type, T, ...) \
  case ::cyclone::DType::enumerator: {               \
    using T = type;                                  \
    return __VA_ARGS__();                            \
  }

// CYCLONE_DISPATCH_FLOAT(dtype, T, ...): runs the body with T = float or double.
#define CYCLONE_DISPATCH_FLOAT(dtype, T, ...)                                  \
  [&] {                                                                        \
    switch (dtype) {                                                           \
      CYCLONE_DTYPE_CASE(kFloat32, float, T, __VA_ARGS__)                      \
      CYCLONE_DTYPE_CASE(kFloat64, double, T, __VA_ARGS__)                     \
      default:                                                                 \
        CYCLONE_THROW("dtype ", ::cyclone::dtype_name(dtype),                  \
                      " is not supported here (float32 or float64 expected)"); \
    }                                                                          \
  }()

// CYCLONE_DISPATCH_FLOATING(dtype, T, ...): float, double, bfloat16 or float16 (kernels that store
// any of them and compute in math_t<T>).
#define CYCLONE_DISPATCH_FLOATING(dtype, T, ...)                                       \
  [&] {                                                                                \
    switch (dtype) {                                                                   \
      CYCLONE_DTYPE_CASE(kFloat32, float, T, __VA_ARGS__)                              \
      CYCLONE_DTYPE_CASE(kFloat64, double, T, __VA_ARGS__)                             \
      CYCLONE_DTYPE_CASE(kBFloat16, ::cyclone::bfloat16, T, __VA_ARGS__)               \
      CYCLONE_DTYPE_CASE(kFloat16, ::cyclone::float16, T, __VA_ARGS__)                 \
      default:                                                                         \
        CYCLONE_THROW("dtype ", ::cyclone::dtype_name(dtype),                          \
                      " is not supported here (float32, float64, bfloat16 or float16 " \
                      "expected)");                                                    \
    }                                                                                  \
  }()

// CYCLONE_DISPATCH_ALL(dtype, T, ...): float, double, int32_t, uint8_t, bfloat16, float16 (the
// 16-bit floats convert to float implicitly: generic code computes in float).
#define CYCLONE_DISPATCH_ALL(dtype, T, ...)                                              \
  [&] {                                                                                  \
    switch (dtype) {                                                                     \
      CYCLONE_DTYPE_CASE(kFloat32, float, T, __VA_ARGS__)                                \
      CYCLONE_DTYPE_CASE(kFloat64, double, T, __VA_ARGS__)                               \
      CYCLONE_DTYPE_CASE(kInt32, int32_t, T, __VA_ARGS__)                                \
      CYCLONE_DTYPE_CASE(kUInt8, uint8_t, T, __VA_ARGS__)                                \
      CYCLONE_DTYPE_CASE(kBFloat16, ::cyclone::bfloat16, T, __VA_ARGS__)                 \
      CYCLONE_DTYPE_CASE(kFloat16, ::cyclone::float16, T, __VA_ARGS__)                   \
      default:                                                                           \
        CYCLONE_THROW("dtype ", ::cyclone::dtype_name(dtype), " is not supported here"); \
    }                                                                                    \
  }()
