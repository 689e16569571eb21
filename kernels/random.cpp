#include "cyclone/kernels/random.h"

#include <cmath>

#include "cyclone/core/error.h"
#include "cyclone/core/philox.h"
#include "cyclone/kernels/cpu/random.h"
#include "cyclone/kernels/cuda/random.h"

namespace cyclone::kernels {
namespace {

// Arguments are checked before a Generator reserves counters, so a rejected call leaves the
// generator where it was.
void check_out(const char* op, Context& ctx, const Tensor& out) {
  CYCLONE_CHECK(out.defined(), op, ": the output tensor is undefined");
  CYCLONE_CHECK(out.dtype() == DType::kFloat32 || out.dtype() == DType::kFloat64, op,
                ": output of dtype ", dtype_name(out.dtype()),
                " is not supported (float32 or float64 expected)");
  CYCLONE_CHECK(ctx.device() == out.device(), op, ": context on ", ctx.device(), " but output on ",
                out.device());
}

void check_uniform(Context& ctx, const Tensor& out, double lo, double hi) {
  check_out("uniform_", ctx, out);
  CYCLONE_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi,
                "uniform_: needs finite lo <= hi, got lo=", lo, " hi=", hi);
  CYCLONE_CHECK(std::isfinite(hi - lo), "uniform_: hi - lo overflows, lo=", lo, " hi=", hi);
}

void check_normal(Context& ctx, const Tensor& out, double mean, double std) {
  check_out("normal_", ctx, out);
  CYCLONE_CHECK(std::isfinite(mean) && std::isfinite(std) && std >= 0.0,
                "normal_: needs finite mean and std >= 0, got mean=", mean, " std=", std);
}

void check_bernoulli(Context& ctx, const Tensor& out, double p) {
  check_out("bernoulli_", ctx, out);
  CYCLONE_CHECK(p >= 0.0 && p <= 1.0, "bernoulli_: needs 0 <= p <= 1, got p=", p);
}

// The one dispatch point of each op: the backend by the output's device.
void run_uniform(Context& ctx, const Tensor& out, double lo, double hi, uint64_t seed,
                 uint64_t offset) {
  if (out.numel() == 0) return;
  if (out.device().is_cuda()) {
    cuda::uniform_(ctx, out, lo, hi, seed, offset);
  } else {
    cpu::uniform_(ctx, out, lo, hi, seed, offset);
  }
}

void run_normal(Context& ctx, const Tensor& out, double mean, double std, uint64_t seed,
                uint64_t offset) {
  if (out.numel() == 0) return;
  if (out.device().is_cuda()) {
    cuda::normal_(ctx, out, mean, std, seed, offset);
  } else {
    cpu::normal_(ctx, out, mean, std, seed, offset);
  }
}

void run_bernoulli(Context& ctx, const Tensor& out, double p, uint64_t seed, uint64_t offset) {
  if (out.numel() == 0) return;
  if (out.device().is_cuda()) {
    cuda::bernoulli_(ctx, out, p, seed, offset);
  } else {
    cpu::bernoulli_(ctx, out, p, seed, offset);
  }
}

Generator::Reservation reserve_for(Generator& gen, const Tensor& out) {
  return gen.reserve_with_seed(random_counters(out.numel(), out.dtype()));
}

}  // namespace

uint64_t random_counters(int64_t numel, DType dtype) {
  CYCLONE_CHECK(numel >= 0, "random_counters: negative element count ", numel);
  CYCLONE_CHECK(dtype == DType::kFloat32 || dtype == DType::kFloat64, "random_counters: dtype ",
                dtype_name(dtype), " is not supported (float32 or float64 expected)");
  const uint64_t per = dtype == DType::kFloat64 ? philox::kValuesPerCounter<double>
                                                : philox::kValuesPerCounter<float>;
  return static_cast<uint64_t>(numel) / per + (static_cast<uint64_t>(numel) % per != 0);
}

void uniform_(Context& ctx, const Tensor& out, double lo, double hi, uint64_t seed,
              uint64_t offset) {
  check_uniform(ctx, out, lo, hi);
  run_uniform(ctx, out, lo, hi, seed, offset);
}

void normal_(Context& ctx, const Tensor& out, double mean, double std, uint64_t seed,
             uint64_t offset) {
  check_normal(ctx, out, mean, std);
  run_normal(ctx, out, mean, std, seed, offset);
}

void bernoulli_(Context& ctx, const Tensor& out, double p, uint64_t seed, uint64_t offset) {
  check_bernoulli(ctx, out, p);
  run_bernoulli(ctx, out, p, seed, offset);
}

void uniform_(Context& ctx, const Tensor& out, double lo, double hi, Generator& gen) {
  check_uniform(ctx, out, lo, hi);
  const auto r = reserve_for(gen, out);
  run_uniform(ctx, out, lo, hi, r.seed, r.offset);
}

void normal_(Context& ctx, const Tensor& out, double mean, double std, Generator& gen) {
  check_normal(ctx, out, mean, std);
  const auto r = reserve_for(gen, out);
  run_normal(ctx, out, mean, std, r.seed, r.offset);
}

void bernoulli_(Context& ctx, const Tensor& out, double p, Generator& gen) {
  check_bernoulli(ctx, out, p);
  const auto r = reserve_for(gen, out);
  run_bernoulli(ctx, out, p, r.seed, r.offset);
}

}  // namespace cyclone::kernels
