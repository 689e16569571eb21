// Elementwise kernels (kernels/elementwise.h), float32, memory-bound:
//   add:  out = x + y   cost: n flops, 3n * 4 bytes (two reads, one write)
//   relu: out = max(x, 0)  cost: 2n * 4 bytes
// Inputs uniform in [-1, 1), so relu takes both branches about equally often.
#include "bench_util.h"
#include "cyclone/kernels/elementwise.h"

namespace cyclone::bench {

namespace {
void add_binary_add_case(Device device, int64_t n) {
  Cost cost;
  cost.flops = static_cast<double>(n);
  cost.bytes = 3.0 * static_cast<double>(n) * sizeof(float);
  register_case(case_name("add", device, "fp32", size_str(n)), device, cost, [device, n] {
    auto sets = rotated_sets({random_tensor({n}, device, 1), random_tensor({n}, device, 2),
                              Tensor::empty({n}, DType::kFloat32, device)});
    return [device, sets = std::move(sets)](int64_t i) {
      const auto& s = sets[static_cast<size_t>(i) % sets.size()];
      kernels::binary(Context::current(device), kernels::BinaryOp::kAdd, s[0], s[1], s[2]);
    };
  });
}

void add_relu_case(Device device, int64_t n) {
  Cost cost;
  cost.bytes = 2.0 * static_cast<double>(n) * sizeof(float);
  register_case(case_name("relu", device, "fp32", size_str(n)), device, cost, [device, n] {
    auto sets =
        rotated_sets({random_tensor({n}, device, 3), Tensor::empty({n}, DType::kFloat32, device)});
    return [device, sets = std::move(sets)](int64_t i) {
      const auto& s = sets[static_cast<size_t>(i) % sets.size()];
      kernels::unary(Context::current(device), kernels::UnaryOp::kRelu, s[0], s[1]);
    };
  });
}
}  // namespace

void register_elementwise() {
  for (Device device : {Device::cpu(), Device::cuda()}) {
    for (int64_t n : {int64_t{1} << 20, int64_t{16} << 20}) {
      add_binary_add_case(device, n);
      add_relu_case(device, n);
    }
  }
}

}  // namespace cyclone::bench
