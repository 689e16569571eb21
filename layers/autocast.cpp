#include "cyclone/layers/autocast.h"

#include "cyclone/core/error.h"

namespace cyclone {

namespace {
thread_local DType t_compute = DType::kFloat32;
}  // namespace

DType autocast_dtype() { return t_compute; }

AutocastScope::AutocastScope(DType compute) : previous_(t_compute) {
  CYCLONE_CHECK(compute == DType::kFloat32 || is_half(compute),
                "autocast: the compute dtype must be float32, bfloat16 or float16, not ",
                dtype_name(compute));
  t_compute = compute;
}

AutocastScope::~AutocastScope() { t_compute = previous_; }

bool autocast_applies(const Tensor& a, const Tensor& b) {
  auto ok = [](const Tensor& t) { return t.dtype() == DType::kFloat32 || is_half(t.dtype()); };
  return is_half(t_compute) && ok(a) && ok(b);
}

}  // namespace cyclone
