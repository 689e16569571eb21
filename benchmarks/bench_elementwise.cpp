// Elementwise kernels (kernels/elementwise.h), memory-bound, float32 and bfloat16 (the activations
// of --precision=bf16: read and written as bfloat16, computed in float):
//   add:  out = x + y   cost: n flops, 3n * sizeof(T) bytes (two reads, one write)
//   relu: out = max(x, 0)  cost: 2n * sizeof(T) bytes
// Inputs uniform in [-1, 1), so relu takes both branches about equally often. bf16 moves half the
// bytes, so at the same fraction of the bandwidth it runs in about half the time.
#include "bench_util.h"
#include "cyclone/kernels/elementwise.h"

namespace cyclone::bench {

namespace {
void add_binary_add_case(Device device, const std::string& precision, int64_t n) {
  const DType dt = precision_dtype(precision);
  Cost cost;
  cost.flops = static_cast<double>(n);
  cost.bytes = 3.0 * static_cast<double>(n) * static_cast<double>(dtype_size(dt));
  register_case(case_name("add", device, precision, size_str(n)), device, cost, [device, dt, n] {
    auto sets =
        rotated_sets({random_tensor_as({n}, dt, device, 1), random_tensor_as({n}, dt, device, 2),
                      Tensor::empty({n}, dt, device)});
    return [device, sets = std::move(sets)](int64_t i) {
      const auto& s = sets[static_cast<size_t>(i) % sets.size()];
      kernels::binary(Context::current(device), kernels::BinaryOp::kAdd, s[0], s[1], s[2]);
    };
  });
}

void add_relu_case(Device device, const std::string& precision, int64_t n) {
  const DType dt = precision_dtype(precision);
  Cost cost;
  cost.bytes = 2.0 * static_cast<double>(n) * static_cast<double>(dtype_size(dt));
  register_case(case_name("relu", device, precision, size_str(n)), device, cost, [device, dt, n] {
    auto sets =
        rotated_sets({random_tensor_as({n}, dt, device, 3), Tensor::empty({n}, dt, device)});
    return [device, sets = std::move(sets)](int64_t i) {
      const auto& s = sets[static_cast<size_t>(i) % sets.size()];
      kernels::unary(Context::current(device), kernels::UnaryOp::kRelu, s[0], s[1]);
    };
  });
}
}  // namespace

void register_elementwise() {
  for (Device device : {Device::cpu(), Device::cuda()})
    for (const char* precision : {"fp32", "bf16"})
      for (int64_t n : {int64_t{1} << 20, int64_t{16} << 20}) {
        add_binary_add_case(device, precision, n);
        add_relu_case(device, precision, n);
      }
}

}  // namespace cyclone::bench
