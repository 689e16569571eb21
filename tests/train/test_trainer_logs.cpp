// The logs a resumed run leaves: the same rows as a run that was never stopped.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "cyclone/schedulers/policy.h"
#include "cyclone/train/trainer.h"
#include "event_reader.h"
#include "train_fixture.h"

namespace cyclone::train {
namespace {

namespace fs = std::filesystem;

// The first cell of every row after the header.
std::vector<std::string> logged_steps(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  std::string l;
  std::getline(in, l);
  while (std::getline(in, l)) out.push_back(l.substr(0, l.find(',')));
  return out;
}

// The runs both tests compare: 3 epochs of 8 steps under one triangular policy, a step row every
// 4 steps, a checkpoint after each epoch (dir/checkpoints), the logs in dir/logs.
TrainerOptions logged_run(testing::Problem& p, const ::cyclone::testing::TempDir& dir,
                          bool tensorboard) {
  TrainerOptions o = testing::quiet(3);
  o.generators = {p.dropout_gen};
  o.log_dir = dir.file("logs");
  o.log_every_steps = 4;
  o.tensorboard = tensorboard;
  o.checkpoint_dir = dir.file("checkpoints");
  o.checkpoint_every = 1;
  o.keep_checkpoints = 0;
  return o;
}

std::unique_ptr<schedulers::Policy> triangular() {
  return schedulers::make_policy(
      R"({"policy": "triangular", "base_lr": 0.01, "max_lr": 0.1, "step_size": 6})");
}

// steps.csv's row at the checkpoint's own step was logged before the checkpoint was written; a
// resume from it must keep that row, not drop it and start logging after it.
TEST(TrainerLogsTest, ResumeKeepsTheStepRowAtTheCheckpoint) {
  auto policy = triangular();
  ::cyclone::testing::TempDir dir;
  const std::string log_dir = dir.file("logs");
  auto options = [&](testing::Problem& p) { return logged_run(p, dir, /*tensorboard=*/false); };
  const std::vector<std::string> want = {"4", "8", "12", "16", "20", "24"};
  {
    testing::Problem p;
    Trainer t(*p.model, *p.opt, *policy, *p.train, nullptr, options(p));
    t.fit();
    ASSERT_EQ(logged_steps(log_dir + "/steps.csv"), want);
  }
  testing::Problem q;
  Trainer t(*q.model, *q.opt, *policy, *q.train, nullptr, options(q));
  t.resume(dir.file("checkpoints/epoch-0002"));
  ASSERT_EQ(t.step(), 16);
  EXPECT_EQ(t.fit().status, "completed");
  EXPECT_EQ(logged_steps(log_dir + "/steps.csv"), want);
}

// What TensorBoard draws from a folder of event files: its files in name order, each
// session_log START dropping the points seen so far at its step or later (EventAccumulator's
// purge; tests/train_interop checks our marker against the real reader). (tag, step, value),
// sorted.
std::vector<std::tuple<std::string, int64_t, float>> tensorboard_view(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  std::vector<std::tuple<std::string, int64_t, float>> points;
  for (const std::string& f : files)
    for (const event_reader::Event& ev : event_reader::read_events(f)) {
      if (ev.session_start)
        std::erase_if(points, [&](const auto& p) { return std::get<1>(p) >= ev.step; });
      for (const auto& [tag, value] : ev.scalars) points.emplace_back(tag, ev.step, value);
    }
  std::sort(points.begin(), points.end());
  return points;
}

// A run resumed from an older checkpoint logs its steps past it again; TensorBoard must show
// them once, as for a run that was never stopped, not a second line doubling back.
TEST(TrainerLogsTest, ResumeTellsTensorBoardToDropTheRedoneSteps) {
  auto policy = triangular();
  ::cyclone::testing::TempDir dir;
  const std::string log_dir = dir.file("logs");
  auto options = [&](testing::Problem& p) { return logged_run(p, dir, /*tensorboard=*/true); };
  // Only the timings differ between the runs: compare everything else.
  auto view = [&] {
    auto v = tensorboard_view(log_dir + "/tensorboard_logs");
    std::erase_if(v, [](const auto& p) { return std::get<0>(p) == "epoch/images_per_second"; });
    return v;
  };
  std::vector<std::tuple<std::string, int64_t, float>> whole;
  {
    testing::Problem p;
    Trainer t(*p.model, *p.opt, *policy, *p.train, nullptr, options(p));
    t.fit();
    whole = view();
  }
  ASSERT_EQ(std::count_if(whole.begin(), whole.end(),
                          [](const auto& p) { return std::get<0>(p) == "train/loss"; }),
            6);
  testing::Problem q;
  Trainer t(*q.model, *q.opt, *policy, *q.train, nullptr, options(q));
  t.resume(dir.file("checkpoints/epoch-0002"));
  ASSERT_EQ(t.step(), 16);
  EXPECT_EQ(t.fit().status, "completed");
  EXPECT_EQ(view(), whole);
}

}  // namespace
}  // namespace cyclone::train
