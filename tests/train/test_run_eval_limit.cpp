// trainer.limit_eval_batches / --limit_eval_batches (smoke runs): a run scores exactly the first
// N x eval_batch_size images of its test set, in order, and says so.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "common/test_util.h"
#include "cyclone/core/file_util.h"
#include "cyclone/data/loader.h"
#include "cyclone/data/registry.h"
#include "cyclone/models/registry.h"
#include "cyclone/train/metrics.h"
#include "cyclone/train/run.h"
#include "cyclone/train/run_config.h"
#include "cyclone/train/run_detail.h"
#include "cyclone/train/weights.h"

namespace cyclone::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The first batches x batch_size images in order; the whole set when the limit reaches past it,
// however large (the product is never formed then: no overflow, no giant allocation).
TEST(RunEvalLimit, FirstBatchesKeepsTheFirstImagesInOrder) {
  data::Dataset d;
  d.name = "ten";
  d.num_classes = 10;
  d.images = Tensor::empty({10, 1, 2, 2}, DType::kUInt8, Device::cpu());
  d.labels = Tensor::empty({10}, DType::kInt32, Device::cpu());
  for (int i = 0; i < 10; ++i) {
    d.labels.data<int32_t>()[i] = 9 - i;
    for (int k = 0; k < 4; ++k) d.images.data<uint8_t>()[4 * i + k] = static_cast<uint8_t>(i);
  }
  d.mean = {0.5f};
  d.std = {0.25f};
  const data::Dataset six = detail::first_batches(d, 2, 3);
  ASSERT_EQ(six.size(), 6);
  EXPECT_EQ(six.images.shape(), Shape({6, 1, 2, 2}));
  EXPECT_EQ(six.labels.to_vector<int32_t>(), (std::vector<int32_t>{9, 8, 7, 6, 5, 4}));
  EXPECT_EQ(six.images.data<uint8_t>()[4 * 5 + 3], 5);
  EXPECT_EQ(six.mean, d.mean);
  EXPECT_EQ(six.num_classes, 10);
  for (const auto& [batches, size] : std::vector<std::pair<int64_t, int64_t>>{
           {4, 3}, {3, 4}, {1, 10}, {0, 3}, {INT64_MAX, 256}, {1, INT64_MAX}, {INT64_MAX / 2, 3}})
    EXPECT_EQ(detail::first_batches(d, batches, size).size(), 10) << batches << " x " << size;
  EXPECT_EQ(detail::first_batches(d, 3, 3).size(), 9);
}

TEST(RunEvalLimit, ScoresExactlyTheFirstBatchesOfTheTestSet) {
  const std::string dir = data::dataset_info("fashion_mnist").default_dir;
  if (!fs::exists(dir + "/t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << dir << " is absent: install Debian's dataset-fashion-mnist package "
                 << "(scripts/install_deps.sh does) to run this test";
  const cyclone::testing::TempDir tmp;
  const fs::path run = tmp.path() / "run";
  const json config = {{"dataset", {{"name", "fashion_mnist"}, {"eval_batch_size", 48}}},
                       {"network", {{"class", "lenet5"}}},
                       {"policy", {{"policy", "constant"}, {"lr", 0.05}}},
                       {"trainer",
                        {{"model_dir", run.string()},
                         {"batch_size", 32},
                         {"epochs", 1},
                         {"limit_train_batches", 3},
                         {"limit_eval_batches", 3},
                         {"tensorboard", false},
                         {"workers", 0},
                         {"optimizer", {{"name", "sgd"}, {"momentum", 0.9}}}}},
                       {"device", "cpu"},
                       {"plots", false},
                       {"save_model", true}};
  RunSpec spec = parse_run_config(config.dump(), "limit.json");
  ASSERT_EQ(spec.limit_eval_batches, 3);
  ::testing::internal::CaptureStdout();
  const RunOutcome out = run_experiment(spec);
  const std::string said = ::testing::internal::GetCapturedStdout();
  ASSERT_EQ(out.exit_code, 0) << said;
  EXPECT_NE(said.find("/ 144 of 10000 (limit_eval_batches 3) test images"), std::string::npos)
      << said;
  const json summary = json::parse(read_file((run / "summary.json").string()));
  EXPECT_EQ(summary.at("limit_eval_batches"), 3);

  // The saved model scores the first 144 test images, normalised by the training split's
  // statistics as the run's loader does, to the run's own figure.
  const data::Dataset train = data::load_dataset("fashion_mnist", "train");
  const data::Dataset test = data::load_dataset("fashion_mnist", "test");
  std::vector<int64_t> first(144);
  std::iota(first.begin(), first.end(), int64_t{0});
  ModelOptions mo;
  mo.in_channels = 1;
  mo.height = mo.width = 28;
  mo.num_classes = 10;
  auto model = make_model("lenet5", mo);
  load_weights(*model, (run / "model.safetensors").string(), /*partial=*/false);
  data::LoaderOptions lo;
  lo.batch_size = 48;
  lo.shuffle = false;
  lo.workers = 0;
  lo.mean = train.mean;
  lo.std = train.std;
  data::DataLoader loader(data::subset(test, first, "first"), lo);
  const EvalResult mine = evaluate(*model, loader, 10);
  ASSERT_EQ(mine.samples, 144);
  EXPECT_DOUBLE_EQ(summary.at("final_test_accuracy").get<double>(), mine.top1);
  // The epoch's test loss in history.csv (9 significant digits): one image more or fewer would
  // move it by far more.
  std::istringstream history(read_file((run / "history.csv").string()));
  std::string header, row;
  ASSERT_TRUE(std::getline(history, header) && std::getline(history, row));
  const auto column = [](const std::string& line, size_t k) {
    std::istringstream in(line);
    std::string cell;
    for (size_t i = 0; i <= k; ++i) std::getline(in, cell, ',');
    return cell;
  };
  size_t k = 0;
  while (column(header, k) != "test_loss") ASSERT_LT(++k, 20u) << header;
  EXPECT_NEAR(std::stod(column(row, k)), mine.loss, 1e-7 * mine.loss) << row;
}

}  // namespace
}  // namespace cyclone::train
