// A model's own random streams (its dropout's generator, made by the model when the caller gives
// none) are found without being named: the range test puts them back and checkpoints carry them,
// so "the model is exactly as before find_lr" and "a resumed run goes on exactly" hold for a model
// built with default options too.
#include <gtest/gtest.h>

#include <vector>

#include "common/test_util.h"
#include "cyclone/models/registry.h"
#include "cyclone/schedulers/policy.h"
#include "cyclone/train/lr_finder.h"
#include "cyclone/train/trainer.h"
#include "train_fixture.h"

namespace cyclone::train {
namespace {

using testing::quiet;

TEST(ModelStreams, AModelListsItsDropoutGeneratorOnce) {
  ModelOptions mo;
  mo.in_channels = 1;
  mo.height = mo.width = 8;
  mo.num_classes = 4;
  mo.dropout = 0.2;
  auto own = make_model("mlp-32-16", mo);  // the model makes its own stream
  ASSERT_EQ(own->random_generators().size(), 1u);
  auto given = std::make_shared<Generator>(5);
  mo.dropout_generator = given;
  mo.height = mo.width = 28;
  auto shared = make_model("lenet5", mo);  // its two dropout layers share it
  const auto gens = shared->random_generators();
  ASSERT_EQ(gens.size(), 1u);
  EXPECT_EQ(gens[0], given);
  mo.dropout = 0;
  EXPECT_TRUE(make_model("lenet5", mo)->random_generators().empty());  // no dropout layer
}

// The Problem's model draws its dropout masks from p.dropout_gen, which nobody names below.
TEST(ModelStreams, TheRangeTestPutsBackTheModelsOwnStream) {
  auto policy = schedulers::make_policy(R"({"policy": "constant", "lr": 0.05})");
  auto train_once = [&](bool range_test_first) {
    testing::Problem p;
    if (range_test_first) {
      LrFinderOptions lo;
      lo.num_steps = 12;
      lo.progress_mode = -2;
      find_lr(*p.model, *p.opt, *p.train, lo);
    }
    Trainer(*p.model, *p.opt, *policy, *p.train, nullptr, quiet(1)).fit();
    return p.model->state_dict();
  };
  const NamedTensors plain = train_once(false), after_test = train_once(true);
  ASSERT_EQ(plain.size(), after_test.size());
  for (size_t i = 0; i < plain.size(); ++i)
    EXPECT_TRUE(::cyclone::testing::all_close(after_test[i].second, plain[i].second, 0, 0))
        << plain[i].first;
}

TEST(ModelStreams, ACheckpointCarriesTheModelsOwnStream) {
  auto policy = schedulers::make_policy(R"({"policy": "constant", "lr": 0.05})");
  std::vector<double> full;
  {
    testing::Problem p;
    Trainer t(*p.model, *p.opt, *policy, *p.train, nullptr, quiet(2));
    t.fit();
    full = t.losses();
  }
  ::cyclone::testing::TempDir dir;
  {
    testing::Problem p;
    TrainerOptions o = quiet(1);
    o.checkpoint_dir = dir.file("checkpoints");
    Trainer(*p.model, *p.opt, *policy, *p.train, nullptr, o).fit();
  }
  testing::Problem q(/*model_seed=*/1);
  q.dropout_gen->set_state(q.dropout_gen->seed(), 12345);  // elsewhere in its stream
  Trainer t(*q.model, *q.opt, *policy, *q.train, nullptr, quiet(2));
  t.resume(dir.file("checkpoints"));
  t.fit();
  EXPECT_EQ(t.losses(), std::vector<double>(full.begin() + 8, full.end()));
}

}  // namespace
}  // namespace cyclone::train
