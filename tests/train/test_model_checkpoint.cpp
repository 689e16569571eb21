// ModelCheckpoint (microDL's callback, trainer.callbacks.ModelCheckpoint) in runs of several
// phases: save_best_only keeps one best over the whole run.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "common/test_util.h"
#include "cyclone/core/file_util.h"
#include "cyclone/train/run.h"
#include "cyclone/train/run_config.h"

namespace cyclone::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// A later phase that does worse than an earlier one must not replace the best weights: phase b
// trains at a rate too small to move a weight (the same val_loss every epoch, never better than
// phase a's best), so after phase a's saves nothing more is saved. Each phase used to start from
// "no best yet" and saved its first epoch whatever it scored (a ruined model's val_loss of 2.3
// replaced a best of 0.49), where a resumed run, reading best_model.json back, kept 0.49.
TEST(ModelCheckpointPhases, ALaterPhaseSavesOnlyWhatBeatsTheWholeRunsBest) {
  const cyclone::testing::TempDir tmp;
  const fs::path run = tmp.path() / "run";
  auto phase = [](const char* name, double lr) {
    return json{{"name", name}, {"epochs", 2}, {"policy", {{"policy", "constant"}, {"lr", lr}}}};
  };
  const json config = {{"dataset", {{"name", "synthetic"}, {"split_ratio", {{"val", 0.2}}}}},
                       {"network", {{"class", "lenet5"}}},
                       {"trainer",
                        {{"model_dir", run.string()},
                         {"batch_size", 32},
                         {"limit_train_batches", 4},
                         {"limit_eval_batches", 2},
                         {"tensorboard", false},
                         {"workers", 0},
                         {"optimizer", {{"name", "sgd"}, {"momentum", 0.9}}},
                         {"callbacks",
                          {{"ModelCheckpoint",
                            {{"monitor", "val_loss"}, {"mode", "min"}, {"save_best_only", true}}}}},
                         {"phases", {phase("a", 0.05), phase("b", 1e-30)}}}},
                       {"device", "cpu"},
                       {"plots", false}};
  RunSpec spec = parse_run_config(config.dump(), "best.json");
  ::testing::internal::CaptureStdout();
  const RunOutcome out = run_experiment(spec);
  const std::string text = ::testing::internal::GetCapturedStdout();
  ASSERT_EQ(out.exit_code, 0) << text;
  const size_t b = text.find("phase 2/2 'b'");
  ASSERT_NE(b, std::string::npos) << text;
  EXPECT_NE(text.substr(0, b).find("ModelCheckpoint: val_loss improved"), std::string::npos)
      << text;
  EXPECT_EQ(text.substr(b).find("ModelCheckpoint:"), std::string::npos) << text.substr(b);
  const json best = json::parse(read_file((run / "best_model.json").string(), 1 << 20));
  ASSERT_TRUE(best["value"].is_number()) << best.dump();
  EXPECT_EQ(best["value"], best["best"]) << best.dump();
}

}  // namespace
}  // namespace cyclone::train
