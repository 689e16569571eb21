// Suggestions on curves that blow up after their minimum, are only a few points long, or only
// rise.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "cyclone/train/suggest.h"

namespace cyclone::train {
namespace {

// 30 points over four decades: the smoothed loss descends (steepest between points 8 and 9), has
// its minimum at point 18, jumps to 6.8 and swings, with a sharper drop (6.8 -> 3.1) among the
// blown-up points than anywhere on the way down. The steepest descent is that of the way down.
TEST(SuggestEdgeTest, SteepestIsNeverPastTheMinimum) {
  std::vector<double> lrs, loss;
  for (int i = 0; i < 30; ++i) {
    lrs.push_back(1e-4 * std::pow(10.0, 4.0 * i / 29));
    double l = 2.5 - 0.01 * i;  // gentle descent
    if (i > 8) l -= 0.3;        // the steepest step of the descent: 8 -> 9
    if (i > 18) l = (i % 2) ? 6.8 : 2.6 + 0.5 * (i - 19);  // blown up, swinging
    loss.push_back(l);
  }
  loss[18] = 2.0;  // the minimum
  const Suggestions s = suggest_lr(lrs, loss);
  ASSERT_TRUE(s.valid);
  EXPECT_DOUBLE_EQ(s.min_loss_lr, lrs[18]);
  EXPECT_LE(s.steepest_lr, s.min_loss_lr);
  EXPECT_DOUBLE_EQ(s.steepest_lr, lrs[8]);
  EXPECT_LE(s.valley_lr, s.min_loss_lr);
}

// A held-out range test of four points: two that decrease, then the blow-up. fastai's valley
// starts its decreasing run one point too early (-1: Python's last point); the valley must lie on
// the decreasing run.
TEST(SuggestEdgeTest, ValleyOfAShortCurveIsOnItsDecreasingRun) {
  const std::vector<double> lrs = {1e-3, 1e-2, 1e-1, 1}, loss = {2.5, 2.4, 334, 500};
  const Suggestions s = suggest_lr(lrs, loss);
  ASSERT_TRUE(s.valid);
  EXPECT_DOUBLE_EQ(s.min_loss_lr, 1e-2);
  EXPECT_LE(s.valley_lr, s.min_loss_lr);
  EXPECT_DOUBLE_EQ(s.valley_lr, 1e-3);
  EXPECT_DOUBLE_EQ(s.steepest_lr, 1e-3);
}

TEST(SuggestEdgeTest, ACurveThatOnlyRisesSuggestsItsSmallestRate) {
  const std::vector<double> lrs = {1e-3, 1e-2, 1e-1, 1}, loss = {2, 3, 4, 9};
  const Suggestions s = suggest_lr(lrs, loss);
  ASSERT_TRUE(s.valid);
  EXPECT_DOUBLE_EQ(s.min_loss_lr, 1e-3);
  EXPECT_DOUBLE_EQ(s.steepest_lr, 1e-3);
  EXPECT_DOUBLE_EQ(s.valley_lr, 1e-3);
}

}  // namespace
}  // namespace cyclone::train
