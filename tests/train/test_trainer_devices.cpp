// The trainer and the range test on every device: the CUDA run computes the same losses as the
// CPU reference (same Philox dropout masks, same data order) within float tolerance, and the
// range test restores the GPU state exactly.
#include <gtest/gtest.h>

#include <cmath>

#include "common/test_util.h"
#include "cyclone/schedulers/policy.h"
#include "cyclone/train/lr_finder.h"
#include "cyclone/train/trainer.h"
#include "train_fixture.h"

namespace cyclone::train {
namespace {

using ::cyclone::testing::DeviceTest;

class TrainerDevices : public DeviceTest {};

std::vector<double> train_losses(Device d) {
  testing::Problem p(1, "sgd", R"({"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4})", 256, d);
  auto policy = schedulers::make_policy(
      R"({"policy": "triangular", "base_lr": 0.01, "max_lr": 0.1, "step_size": 6})");
  TrainerOptions o;
  o.epochs = 2;
  o.progress_mode = -2;
  o.num_classes = 4;
  o.generators = {p.dropout_gen};
  Trainer t(*p.model, *p.opt, *policy, *p.train, p.test.get(), o);
  const FitResult r = t.fit();
  EXPECT_EQ(r.status, "completed");
  EXPECT_GT(r.final_accuracy, 0.5);
  return t.losses();
}

TEST_P(TrainerDevices, LossesMatchTheCpuReference) {
  const std::vector<double> cpu = train_losses(Device::cpu());
  const std::vector<double> dev = train_losses(device());
  ASSERT_EQ(cpu.size(), dev.size());
  for (size_t i = 0; i < cpu.size(); ++i)
    EXPECT_NEAR(dev[i], cpu[i], 1e-3 * (1 + std::abs(cpu[i]))) << "step " << i;
}

TEST_P(TrainerDevices, RangeTestRestoresTheState) {
  testing::Problem p(1, "adam", R"({"lr": 1e-3})", 256, device());
  const NamedTensors before = p.model->state_dict();
  std::vector<std::vector<double>> values;
  for (const auto& [n, t] : before) values.push_back(::cyclone::testing::values(t));
  LrFinderOptions o;
  o.num_steps = 16;
  o.progress_mode = -2;
  o.generators = {p.dropout_gen};
  const LrFinderResult r = find_lr(*p.model, *p.opt, *p.train, o);
  EXPECT_TRUE(r.suggestions.valid);
  const NamedTensors after = p.model->state_dict();
  for (size_t i = 0; i < after.size(); ++i)
    EXPECT_EQ(::cyclone::testing::values(after[i].second), values[i]) << after[i].first;
  EXPECT_EQ(p.opt->step_count(), 0);
}

CYCLONE_INSTANTIATE_DEVICE_TEST(TrainerDevices);

}  // namespace
}  // namespace cyclone::train
