// Real bytes: the MNIST test split committed in tests/data/mnist (counts, label histogram, pixel
// checksum, and a short training run that learns it), and Fashion-MNIST from Debian's
// dataset-fashion-mnist package when it is installed.
#include <chrono>
#include <cmath>

#include "common/test_util.h"
#include "data/data_test_util.h"

namespace cyclone::testing {
namespace {

data::Dataset mnist_test() {
  data::LoadOptions o;
  o.data_dir = (test_data_dir() / "mnist").string();
  return data::load_dataset("mnist", "test", o);
}

TEST(RealMnist, CountsHistogramAndChecksum) {
  const data::Dataset d = mnist_test();
  EXPECT_EQ(d.images.shape(), Shape({10000, 1, 28, 28}));
  // The split's published label counts (shared/data/README.md).
  EXPECT_EQ(data::label_histogram(d),
            (std::vector<int64_t>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}));
  const uint8_t* x = d.images.data<uint8_t>();
  uint64_t sum = 0;
  for (int64_t i = 0; i < d.images.numel(); ++i) sum += x[i];
  EXPECT_EQ(sum, 264923200u);
  EXPECT_EQ(fnv1a(x, static_cast<size_t>(d.images.numel())), 3285703609493231509ull);
  // The first test digit is a 7, the last a 6 (the well-known ends of the file).
  EXPECT_EQ(d.labels.to_vector<int32_t>().front(), 7);
  EXPECT_EQ(d.labels.to_vector<int32_t>().back(), 6);
  // Its own statistics sit next to the training split's published ones.
  std::vector<float> mean, std;
  data::channel_stats(d, mean, std);
  EXPECT_NEAR(mean[0], 0.1307, 0.005);
  EXPECT_NEAR(std[0], 0.3081, 0.005);
}

// LeNet-5 (models/) with SGD + momentum (optim/) on 8,000 images of the real split through the
// loader (shuffled, normalised), one epoch, then 2,000 held-out images: the whole stack learns
// real digits.
TEST(RealMnist, LeNet5LearnsIt) {
  const data::Dataset d = mnist_test();
  const data::Split split = data::split_validation(d, 0.2, 1);
  ASSERT_EQ(split.train.size(), 8000);
  ModelOptions mo;
  mo.in_channels = 1;
  mo.height = mo.width = 28;
  mo.num_classes = 10;
  mo.seed = 3;
  auto model = make_model("lenet5", mo);
  optim::SgdOptions so;
  so.lr = 0.02;
  so.momentum = 0.9;
  optim::Sgd opt(model->named_parameters(), so);
  data::LoaderOptions o;
  o.batch_size = 64;
  o.seed = 7;
  data::DataLoader loader(split.train, o);
  const auto start = std::chrono::steady_clock::now();
  loader.start_epoch(0);
  data::Batch b;
  double first_loss = -1, last_loss = 0;
  while (loader.next(b)) {
    Tensor loss = cross_entropy((*model)(b.images), b.labels);
    opt.zero_grad();
    loss.backward();
    opt.step();
    last_loss = loss.item();
    if (first_loss < 0) first_loss = last_loss;
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  model->eval();
  data::LoaderOptions eval;
  eval.batch_size = 1000;
  eval.shuffle = false;
  data::DataLoader held_out(split.validation, eval);
  autograd::NoGradGuard no_grad;
  double correct = 0;
  while (held_out.next(b)) correct += accuracy_topk((*model)(b.images), b.labels, 1) * b.size();
  const double acc = correct / split.validation.size();
  std::printf(
      "[ MNIST LeNet-5 ] 1 epoch of 8000 images in %.2f s, loss %.3f -> %.3f, held-out "
      "accuracy %.2f%%\n",
      secs, first_loss, last_loss, 100 * acc);
  EXPECT_LT(last_loss, first_loss);
  EXPECT_GT(acc, 0.90);
}

TEST(RealFashionMnist, DebianPackageReadsExactly) {
  const std::string dir = data::dataset_info("fashion_mnist").default_dir;
  if (!std::filesystem::exists(dir + "/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << dir << " is absent: install Debian's dataset-fashion-mnist package "
                 << "(scripts/install_deps.sh does) to run this test";
  }
  const data::Dataset train = data::load_dataset("fashion_mnist", "train");
  const data::Dataset test = data::load_dataset("fashion_mnist", "test");
  EXPECT_EQ(train.images.shape(), Shape({60000, 1, 28, 28}));
  EXPECT_EQ(test.images.shape(), Shape({10000, 1, 28, 28}));
  EXPECT_EQ(data::label_histogram(train), std::vector<int64_t>(10, 6000));
  EXPECT_EQ(data::label_histogram(test), std::vector<int64_t>(10, 1000));
  std::vector<float> mean, std;
  data::channel_stats(train, mean, std);
  EXPECT_NEAR(mean[0], 0.2860, 0.0005);  // the published statistics of the training split
  EXPECT_NEAR(std[0], 0.3530, 0.0005);
  // Checked against the md5 of the decompressed file given in shared/data/README.md.
  EXPECT_EQ(fnv1a(test.images.data<uint8_t>(), 10000 * 784), 17866087328905507443ull);
}

}  // namespace
}  // namespace cyclone::testing
