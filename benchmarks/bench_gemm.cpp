// GEMM through kernels::gemm (cuBLAS on CUDA, OpenBLAS on the CPU): C = A @ B, square n x n,
// float32, alpha 1, beta 0. cost: 2 n^3 flops; 3 n^2 * 4 bytes at least (A, B read, C written).
// TF32 is a separate case (ctx.set_allow_tf32) measured against the tensor cores' TF32 peak; the
// fp32 cases against the CUDA cores' fp32 peak.
#include "bench_util.h"
#include "cyclone/kernels/gemm.h"

namespace cyclone::bench {

namespace {
void add_gemm_case(Device device, bool tf32, int64_t n) {
  const double dn = static_cast<double>(n);
  Cost cost;
  cost.flops = 2.0 * dn * dn * dn;
  cost.bytes = 3.0 * dn * dn * sizeof(float);
  cost.peak = tf32 ? Peak::kTf32 : Peak::kFp32;
  register_case(case_name("gemm", device, tf32 ? "tf32" : "fp32", std::to_string(n)), device, cost,
                [device, tf32, n] {
                  auto sets = rotated_sets({random_tensor({n, n}, device, 1),
                                            random_tensor({n, n}, device, 2),
                                            Tensor::empty({n, n}, DType::kFloat32, device)});
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
  for (int64_t n : {256, 1024}) add_gemm_case(Device::cpu(), false, n);
  for (bool tf32 : {false, true})
    for (int64_t n : {256, 1024, 4096}) add_gemm_case(Device::cuda(), tf32, n);
}

}  // namespace cyclone::bench
