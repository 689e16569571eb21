// The conversion behind kernels::cast, shared by both backends: float to integer truncates toward
// zero and saturates to the target's range (NaN -> 0), so no input is undefined behaviour.
// bfloat16 and float16 convert through float: from them exactly, to them by rounding to nearest
// even (a double is rounded to float first).
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>

#include "cyclone/core/bfloat16.h"
#include "cyclone/core/float16.h"
#include "cyclone/core/hd.h"

namespace cyclone::kernels {

template <class To, class From>
CYCLONE_HD To convert(From v) {
  if constexpr (std::is_same_v<From, bfloat16> || std::is_same_v<From, float16>) {
    return convert<To>(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, bfloat16> || std::is_same_v<To, float16>) {
    return To(convert<float>(v));
  } else if constexpr (std::is_integral_v<To> && std::is_floating_point_v<From>) {
    if (!(v == v)) return To(0);
    const From lo = static_cast<From>(std::numeric_limits<To>::min());
    const From hi = static_cast<From>(std::numeric_limits<To>::max());
    if (v <= lo) return std::numeric_limits<To>::min();
    if (v >= hi) return std::numeric_limits<To>::max();
    return static_cast<To>(v);
  } else if constexpr (std::is_integral_v<To> && std::is_integral_v<From> &&
                       sizeof(To) < sizeof(From)) {
    if (v < From(std::numeric_limits<To>::min())) return std::numeric_limits<To>::min();
    if (v > From(std::numeric_limits<To>::max())) return std::numeric_limits<To>::max();
    return static_cast<To>(v);
  } else {
    return static_cast<To>(v);
  }
}

}  // namespace cyclone::kernels
