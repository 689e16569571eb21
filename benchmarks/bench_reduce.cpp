// Reductions (kernels/reduce.h), float32 sums, memory-bound: cost n flops, n * 4 bytes read.
//   sum_all:      one element = sum of every element (1M and 16M elements)
//   sum_channels: x [128, 64, 32, 32] -> [64], the bias gradient / batch-norm statistic of a
//                 CIFAR-sized activation
#include "bench_util.h"
#include "cyclone/kernels/reduce.h"

namespace cyclone::bench {

namespace {
void add_sum_all_case(Device device, int64_t n) {
  Cost cost;
  cost.flops = static_cast<double>(n);
  cost.bytes = static_cast<double>(n + 1) * sizeof(float);
  register_case(case_name("sum_all", device, "fp32", size_str(n)), device, cost, [device, n] {
    auto sets =
        rotated_sets({random_tensor({n}, device, 4), Tensor::empty({1}, DType::kFloat32, device)});
    return [device, sets = std::move(sets)](int64_t i) {
      const auto& s = sets[static_cast<size_t>(i) % sets.size()];
      kernels::reduce_all(Context::current(device), kernels::ReduceOp::kSum, s[0], s[1]);
    };
  });
}

void add_sum_channels_case(Device device, const Shape& shape) {
  const int64_t n = shape.numel();
  const int64_t channels = shape[1];
  Cost cost;
  cost.flops = static_cast<double>(n);
  cost.bytes = static_cast<double>(n + channels) * sizeof(float);
  register_case(
      case_name("sum_channels", device, "fp32", shape_str(shape)), device, cost,
      [device, shape, channels] {
        auto sets = rotated_sets(
            {random_tensor(shape, device, 5), Tensor::empty({channels}, DType::kFloat32, device)});
        return [device, sets = std::move(sets)](int64_t i) {
          const auto& s = sets[static_cast<size_t>(i) % sets.size()];
          kernels::reduce_channels(Context::current(device), kernels::ReduceOp::kSum, s[0], s[1]);
        };
      });
}
}  // namespace

void register_reduce() {
  for (Device device : {Device::cpu(), Device::cuda()}) {
    for (int64_t n : {int64_t{1} << 20, int64_t{16} << 20}) add_sum_all_case(device, n);
    add_sum_channels_case(device, Shape{128, 64, 32, 32});
  }
}

}  // namespace cyclone::bench
