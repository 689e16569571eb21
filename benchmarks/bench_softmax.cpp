// Softmax cross-entropy, forward then backward, as one training step runs it
// (kernels/softmax.h): logits [rows, classes] float32, int32 labels, no label smoothing.
//   forward:  loss = mean_r (lse_r - x[r, label_r]), lse saved per row
//   backward: dx = (softmax(x) - onehot) * dloss / rows
// cost: ~5 flops per element; at least 3 * rows * classes * 4 bytes through this API (the forward
// reads the logits, the backward reads them again and writes dx); labels and lse are small.
// Shapes: MNIST/CIFAR-10 heads [128, 10], an ImageNet head [128, 1000] and a large batch
// [4096, 1000].
#include "bench_util.h"
#include "cyclone/kernels/elementwise.h"
#include "cyclone/kernels/softmax.h"

namespace cyclone::bench {

namespace {
void add_xent_case(Device device, int64_t rows, int64_t classes) {
  const double n = static_cast<double>(rows * classes);
  Cost cost;
  cost.flops = 5.0 * n;
  cost.bytes = 3.0 * n * sizeof(float);
  register_case(
      case_name("softmax_xent_fwd_bwd", device, "fp32", shape_str(Shape{rows, classes})), device,
      cost, [device, rows, classes] {
        Context& ctx = Context::current(device);
        // Logits of a few units' spread, as a classifier's are; the loss stays finite.
        Tensor dloss = Tensor::empty({1}, DType::kFloat32, device);
        kernels::fill(ctx, dloss, 1.0);
        auto sets = rotated_sets({random_tensor({rows, classes}, device, 6, -4.0, 4.0),
                                  random_labels(rows, classes, device, 7),
                                  Tensor::empty({1}, DType::kFloat32, device),
                                  Tensor::empty({rows}, DType::kFloat32, device),
                                  Tensor::empty({rows, classes}, DType::kFloat32, device), dloss});
        return [device, sets = std::move(sets)](int64_t i) {
          const auto& s = sets[static_cast<size_t>(i) % sets.size()];
          Context& c = Context::current(device);
          kernels::softmax_cross_entropy_forward(c, s[0], s[1], 0.0, s[2], s[3]);
          kernels::softmax_cross_entropy_backward(c, s[0], s[1], 0.0, s[3], s[5], s[4]);
        };
      });
}
}  // namespace

void register_softmax() {
  for (Device device : {Device::cpu(), Device::cuda()}) {
    add_xent_case(device, 128, 10);
    add_xent_case(device, 128, 1000);
    add_xent_case(device, 4096, 1000);
  }
}

}  // namespace cyclone::bench
