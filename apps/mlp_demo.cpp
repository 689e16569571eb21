// mlp_demo: the smallest end-to-end use of Cyclone until best_lr exists. Trains a two-layer MLP
// on a synthetic, linearly non-trivial classification problem (Gaussian blobs in 32-D) with
// mini-batch SGD + momentum, on the device chosen at run time, and prints the loss as it falls.
//
//   ./bin/mlp_demo [--device=auto|cpu|cuda[:N]] [--epochs=N] [--lr=X] [--batch_size=N] [--seed=N]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cyclone/cyclone.h"

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

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "mlp_demo: %s (see --help)\n", msg.c_str());
  std::exit(2);
}

template <class T>
T parse_number(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  errno = 0;
  const double d = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || errno != 0) usage_error("bad value '" + v + "' for " + flag);
  return static_cast<T>(d);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i], value;
    if (a == "--help" || a == "-h") {
      std::printf(
          "usage: mlp_demo [--device=auto|cpu|cuda[:N]] [--epochs=N] [--lr=X] [--momentum=X]\n"
          "                [--batch_size=N] [--seed=N]\n"
          "Trains a 32-64-4 MLP on synthetic blobs and prints the loss per epoch.\n");
      std::exit(0);
    }
    const auto eq = a.find('=');
    if (eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      usage_error("flag " + a + " needs a value");
    }
    if (a == "--device")
      o.device = value;
    else if (a == "--epochs")
      o.epochs = parse_number<int>(a, value);
    else if (a == "--lr")
      o.lr = parse_number<double>(a, value);
    else if (a == "--momentum")
      o.momentum = parse_number<double>(a, value);
    else if (a == "--batch_size")
      o.batch_size = parse_number<int>(a, value);
    else if (a == "--seed")
      o.seed = parse_number<uint64_t>(a, value);
    else
      usage_error("unknown flag " + a);
  }
  if (o.epochs < 1) usage_error("--epochs must be >= 1");
  if (o.batch_size < 1) usage_error("--batch_size must be >= 1");
  if (!(o.lr > 0)) usage_error("--lr must be > 0");
  return o;
}

constexpr int kFeatures = 32, kHidden = 64, kClasses = 4, kTrain = 4096, kTest = 1024;

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
  const Options o = parse(argc, argv);
  try {
    return run(o);
  } catch (const cyclone::Error& e) {
    std::fprintf(stderr, "mlp_demo: %s\n", e.message().c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mlp_demo: %s\n", e.what());
    return 1;
  }
}
