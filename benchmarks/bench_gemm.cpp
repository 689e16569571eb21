// GEMM through kernels::gemm (cuBLAS on CUDA, OpenBLAS on the CPU): C = A @ B, square n x n,
// alpha 1, beta 0. cost: 2 n^3 flops; 3 n^2 * sizeof(T) bytes at least (A, B read, C written).
// Three precisions: fp32 against the CUDA cores' fp32 peak; tf32 (float32 data,
// ctx.set_allow_tf32) against the tensor cores' TF32 peak; bf16 (bfloat16 data, float32
// accumulation) against the BF16 tensor-core peak. The largest bf16 case is the measured peak the
// bf16 end-to-end training numbers are compared with (benchmarks/README.md).
#include "bench_util.h"
#include "cyclone/kernels/gemm.h"

namespace cyclone::bench {

namespace {
void add_gemm_case(Device device, const std::string& precision, int64_t n) {
  const bool tf32 = precision == "tf32";
  const DType dt = precision_dtype(precision);
  const double dn = static_cast<double>(n);
  Cost cost;
  cost.flops = 2.0 * dn * dn * dn;
  cost.bytes = 3.0 * dn * dn * static_cast<double>(dtype_size(dt));
  cost.peak = dt == DType::kBFloat16 ? Peak::kBf16 : tf32 ? Peak::kTf32 : Peak::kFp32;
  register_case(case_name("gemm", device, precision, std::to_string(n)), device, cost,
                [device, tf32, dt, n] {
                  auto sets = rotated_sets({random_tensor_as({n, n}, dt, device, 1),
                                            random_tensor_as({n, n}, dt, device, 2),
                                            Tensor::empty({n, n}, dt, device)});
                  return [device, tf32, sets = std::move(sets)](int64_t i) {
                    const auto& s = sets[static_cast<size_t>(i) % sets.size()];
                    Context& ctx = Context::current(device);
                    // Set on every call: one context serves every case, fp32 and TF32 alike.
                    ctx.set_allow_tf32(tf32);
                    kernels::gemm(ctx, false, false, 1.0, s[0], s[1], 0.0, s[2]);
                  };
                });
}
}  // namespace

void register_gemm() {
  for (int64_t n : {256, 1024}) add_gemm_case(Device::cpu(), "fp32", n);
  for (const char* precision : {"fp32", "tf32"})
    for (int64_t n : {256, 1024, 4096}) add_gemm_case(Device::cuda(), precision, n);
  for (int64_t n : {1024, 4096, 8192}) add_gemm_case(Device::cuda(), "bf16", n);
}

}  // namespace cyclone::bench
