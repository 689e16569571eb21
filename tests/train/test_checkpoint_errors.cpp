// Files that do not fit: a damaged checkpoint's errors name the file at fault and are runtime
// errors (the checkpoint is broken, not the command line); weights of which nothing fits the
// model are refused even with --partial.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "common/test_util.h"
#include "cyclone/core/safetensors.h"
#include "cyclone/schedulers/policy.h"
#include "cyclone/train/checkpoint.h"
#include "cyclone/train/cli.h"
#include "cyclone/train/run_detail.h"
#include "cyclone/train/weights.h"
#include "train_fixture.h"

namespace cyclone::train {
namespace {

TEST(CheckpointErrorsTest, WeightsThatDoNotFitNameTheFileAndTheTensor) {
  testing::Problem p;
  ::cyclone::testing::TempDir dir;
  const std::string ckpt =
      write_checkpoint(dir.path().string(), "epoch-0001", *p.model, *p.opt, R"({"x": 1})");
  const std::string weights = ckpt + "/model.safetensors";
  NamedTensors tensors = load_safetensors(weights).tensors;
  const std::string dropped = tensors.back().first;
  tensors.pop_back();
  save_safetensors(weights, tensors, {{"format", "pt"}});
  ::cyclone::testing::expect_error([&] { read_checkpoint(ckpt, *p.model, *p.opt); },
                                   {weights + ": ", "'" + dropped + "' is missing"});
}

TEST(CheckpointErrorsTest, APolicyThatDoesNotBuildIsARuntimeErrorNamingTrainerJson) {
  const std::string path = "ckpt/epoch-0002/trainer.json";
  for (const std::string bad : {R"({"policy": "nosuch"})", R"("one_cycle")",
                                R"({"policy": "one_cycle", "max_lr": -1, "total_steps": 9})"}) {
    try {
      detail::check_checkpoint_policy(path, bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const UsageError& e) {
      ADD_FAILURE() << "a usage error (exit 2) for a damaged checkpoint: " << e.message();
    } catch (const Error& e) {
      EXPECT_EQ(e.message().rfind(path + ": 'policy' is damaged", 0), 0u) << e.message();
    }
  }
  EXPECT_NO_THROW(detail::check_checkpoint_policy(path, R"({"policy": "constant", "lr": 0.1})"));
}

// --model_fname pointed at an optimizer state (or another model's weights) with --partial used to
// print "loaded 0 of N model tensors" and train from the random init.
TEST(CheckpointErrorsTest, PartialWeightsOfWhichNothingFitsAreRefused) {
  testing::Problem p;
  ::cyclone::testing::TempDir dir;
  const std::string path = dir.file("optimizer.safetensors");
  TrainerOptions o = testing::quiet(1);  // one epoch, so that the momentum buffers exist
  o.generators = {p.dropout_gen};
  Trainer(*p.model, *p.opt, *schedulers::make_policy(R"({"policy": "constant", "lr": 0.01})"),
          *p.train, nullptr, o)
      .fit();
  p.opt->save(path);
  const std::string first_param = p.model->state_dict().front().first;
  const float before = p.model->state_dict().front().second.data<float>()[0];
  ::cyclone::testing::expect_error([&] { load_weights(*p.model, path, /*partial=*/true); },
                                   {path + ": none of its", "fits the model",
                                    "the file holds state.", "the model wants " + first_param});
  EXPECT_EQ(p.model->state_dict().front().second.data<float>()[0], before);
}

}  // namespace
}  // namespace cyclone::train
