// mlp_demo: the smallest end-to-end use of Cyclone until best_lr exists. Trains a two-layer MLP
// on a synthetic, linearly non-trivial classification problem (Gaussian blobs in 32-D) with
// mini-batch SGD + momentum, on the device chosen at run time, and prints the loss as it falls.
//
//   ./bin/mlp_demo [--device=auto|cpu|cuda[:N]] [--epochs=N] [--lr=X] [--momentum=X]
//                  [--batch_size=N] [--seed=N]
// A bad flag or value is one line and exit status 2, before any work; --help lists the limits.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "cyclone/cyclone.h"
#include "cyclone/train/cli.h"
#include "cyclone/train/startup.h"

namespace {

using namespace cyclone;

struct Options {
  std::string device = "auto";
  int epochs = 8;
  double lr = 0.02;
  double momentum = 0.9;
  int batch_size = 64;
  uint64_t seed = 0;
};

constexpr int kFeatures = 32, kHidden = 64, kClasses = 4, kTrain = 4096, kTest = 1024;

// Every value is checked before any work (exit 2 naming the flag): a batch larger than the
// training set would make zero batches and a NaN loss, a fractional --epochs or --seed would be
// truncated.
std::optional<Options> parse(int argc, char** argv) {
  Options o;
  train::ArgParser p("mlp_demo",
                     "Trains a 32-64-4 MLP on synthetic blobs and prints the loss per epoch.");
  p.add_flag("device", &o.device, "auto, cpu, cuda or cuda:N", "DEV");
  p.add_flag("epochs", &o.epochs, "passes over the training set, 1 to 10000", "N",
             train::Bounds::closed(1, 10000));
  p.add_flag("lr", &o.lr, "learning rate", "X", train::Bounds::greater_than(0));
  p.add_flag("momentum", &o.momentum, "SGD momentum", "X", train::Bounds::closed_open(0, 1));
  p.add_flag("batch_size", &o.batch_size,
             "examples per step, 1 to the training set's " + std::to_string(kTrain), "N",
             train::Bounds::closed(1, kTrain));
  p.add_flag("seed", &o.seed, "seed of the data and the initial weights");
  train::reject_positional("mlp_demo", p.parse(argc, argv));
  if (p.help_requested()) {
    std::printf("%s", p.help().c_str());
    return std::nullopt;
  }
  if (!device_spec_well_formed(o.device))
    throw train::UsageError("--device: '" + o.device + "' is not auto, cpu, cuda or cuda:N");
  return o;
}

// Blobs: class centres uniform in [-1, 1]^32, samples = centre + N(0, 1.5^2) noise, so classes
// overlap and the loss has somewhere to fall.
void make_data(Device dev, uint64_t seed, int n, Tensor& x, Tensor& y, uint64_t stream) {
  Generator gen(seed);
  Tensor centres = Tensor::empty({kClasses, kFeatures}, DType::kFloat32, Device::cpu());
  kernels::uniform_(Context::current(Device::cpu()), centres, -1, 1, gen);
  Generator noise_gen(seed + 1 + stream);
  Tensor noise = Tensor::empty({n, kFeatures}, DType::kFloat32, Device::cpu());
  kernels::normal_(Context::current(Device::cpu()), noise, 0, 1.5, noise_gen);
  std::vector<int32_t> labels(n);
  const float* c = centres.data<float>();
  float* p = noise.data<float>();
  for (int i = 0; i < n; ++i) {
    labels[i] = i % kClasses;
    for (int j = 0; j < kFeatures; ++j) p[i * kFeatures + j] += c[labels[i] * kFeatures + j];
  }
  x = noise.to(dev);
  y = Tensor::from_vector<int32_t>(labels, {n}, dev);
}

Tensor init_param(Shape s, int fan_in, Device dev, Generator& gen) {
  // He-uniform (Kaiming): U(-b, b), b = sqrt(6 / fan_in), right for ReLU layers.
  Tensor t = Tensor::empty(s, DType::kFloat32, dev);
  const double b = std::sqrt(6.0 / fan_in);
  kernels::uniform_(Context::of(t), t, -b, b, gen);
  t.set_requires_grad();
  return t;
}

int run(const Options& o) {
  const Device dev = resolve_device(o.device);
  set_default_device(dev);
  std::printf("mlp_demo: device %s, %d epochs, batch %d, lr %g, momentum %g, seed %llu\n",
              dev.str().c_str(), o.epochs, o.batch_size, o.lr, o.momentum,
              static_cast<unsigned long long>(o.seed));
  Tensor x_train, y_train, x_test, y_test;
  make_data(dev, o.seed, kTrain, x_train, y_train, 0);
  make_data(dev, o.seed, kTest, x_test, y_test, 1);

  Generator gen(o.seed + 100);
  std::vector<Tensor> params = {init_param({kHidden, kFeatures}, kFeatures, dev, gen),
                                Tensor::zeros({kHidden}, DType::kFloat32, dev),
                                init_param({kClasses, kHidden}, kHidden, dev, gen),
                                Tensor::zeros({kClasses}, DType::kFloat32, dev)};
  params[1].set_requires_grad();
  params[3].set_requires_grad();
  std::vector<Tensor> velocity;
  for (const Tensor& p : params) velocity.push_back(zeros_like(p));
  auto forward = [&](const Tensor& x) {
    return linear(relu(linear(x, params[0], params[1])), params[2], params[3]);
  };

  {
    autograd::NoGradGuard no_grad;
    const Tensor logits = forward(x_test);
    std::printf("before training   test loss %.4f  test accuracy %.2f%%  (chance: 25%%)\n",
                cross_entropy(logits, y_test).item(), 100 * accuracy_topk(logits, y_test, 1));
  }
  const auto start = std::chrono::steady_clock::now();
  const int batches = kTrain / o.batch_size;
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    double loss_sum = 0;
    for (int b = 0; b < batches; ++b) {
      const int64_t lo = int64_t(b) * o.batch_size;
      Tensor loss = cross_entropy(forward(x_train.slice(lo, lo + o.batch_size)),
                                  y_train.slice(lo, lo + o.batch_size));
      for (const Tensor& p : params) p.zero_grad();
      loss.backward();
      // SGD with momentum (PyTorch's form): v = m v + g; p -= lr v.
      autograd::NoGradGuard no_grad;
      for (size_t i = 0; i < params.size(); ++i) {
        Context& ctx = Context::of(params[i]);
        kernels::unary(ctx, kernels::UnaryOp::kMulScalar, velocity[i], velocity[i], o.momentum);
        kernels::binary(ctx, kernels::BinaryOp::kAdd, velocity[i], params[i].grad(), velocity[i]);
        kernels::binary(ctx, kernels::BinaryOp::kSub, params[i], velocity[i] * o.lr, params[i]);
      }
      loss_sum += loss.item();
    }
    autograd::NoGradGuard no_grad;
    const Tensor logits = forward(x_test);
    const double test_loss = cross_entropy(logits, y_test).item();
    const double acc = accuracy_topk(logits, y_test, 1);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("epoch %d/%d  train loss %.4f  test loss %.4f  test accuracy %.2f%%  (%.2f s)\n",
                epoch, o.epochs, loss_sum / batches, test_loss, 100 * acc, secs);
    std::fflush(stdout);
    if (!std::isfinite(loss_sum)) {
      std::fprintf(stderr,
                   "mlp_demo: the loss became %g at epoch %d with lr %g; try a smaller --lr\n",
                   loss_sum, epoch, o.lr);
      return 1;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  train::prepare_for_limits("mlp_demo");
  train::exit_if_blas_cannot_run("mlp_demo", /*multiplies=*/true);
  return train::run_program("mlp_demo", [&] {
    const std::optional<Options> o = parse(argc, argv);
    return o ? run(*o) : 0;
  });
}
