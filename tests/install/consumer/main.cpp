// The smallest useful Cyclone program: two tensors, one op, a checked result. Runs on the CPU so
// that it means the same on every host.
#include <cyclone/cyclone.h>

#include <cstdio>
#include <exception>
#include <iostream>
#include <vector>

int main() {
  try {
    using namespace cyclone;
    const Device cpu = Device::cpu();
    const Tensor a = Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2}, cpu);
    const Tensor b = Tensor::from_vector<float>({10, 20, 30, 40}, {2, 2}, cpu);
    const Tensor c = Tensor::empty({2, 2}, DType::kFloat32, cpu);
    kernels::binary(Context::current(cpu), kernels::BinaryOp::kAdd, a, b, c);
    std::cout << c << "\n";
    const std::vector<float> want{11, 22, 33, 44};
    if (c.to_vector<float>() != want) {
      std::fprintf(stderr, "consumer: wrong sum\n");
      return 1;
    }
    std::printf("consumer ok (CUDA backend %s)\n", built_with_cuda() ? "built" : "not built");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
  return 0;
}
