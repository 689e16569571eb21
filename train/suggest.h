// Learning-rate suggestions from a range test's curve (smoothed loss against rate).
//
//   min_loss_lr     the rate at the minimum smoothed loss: what the original best_lr.py uses. It
//                   sits at the edge of divergence, so it is a rate to cycle up to, not to train
//                   at steadily.
//   min_loss_lr/10  Smith's and fast.ai's rule of thumb for a steady rate.
//   steepest_lr     the rate where the smoothed loss falls fastest per decade: the most negative
//                   (L[i+1] - L[i]) / (log lr[i+1] - log lr[i]) (fast.ai's `steep`), searched
//                   only on the descending part of the curve (up to the minimum), so it is never
//                   past min_loss_lr.
//   valley_lr       fast.ai's `valley`: the longest run of decreasing loss (longest decreasing
//                   subsequence), and the point 1/3 + 1/6 of the way down it (its start counted
//                   without fastai's off-by-one, suggest.cpp says why).
// As fast.ai does, steepest and valley look at the curve without its first 10% of steps (the
// rate is too small to move anything there) and its last 5 (the blow-up); the minimum looks at
// all of it. Non-finite losses are ignored everywhere, so a NaN step never breaks a suggestion.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cyclone::train {

struct Suggestions {
  double min_loss_lr = 0;  // 0 where the curve has no finite point
  double min_loss_lr_div10 = 0;
  double steepest_lr = 0;
  double valley_lr = 0;
  double min_loss = 0;  // the smoothed loss at min_loss_lr
  bool valid = false;   // false when fewer than 2 finite points remain
};

Suggestions suggest_lr(const std::vector<double>& lrs, const std::vector<double>& smoothed);

// The named suggestion: "min_loss", "min_loss_div10", "steepest" or "valley" (anything else is an
// Error listing these).
double pick_suggestion(const Suggestions& s, const std::string& name);
const std::vector<std::string>& suggestion_names();

// Exponentially smoothed loss with bias correction (fast.ai's SmoothenValue, beta 0.98):
//   avg_t = beta·avg_{t-1} + (1 - beta)·x_t,  smoothed_t = avg_t / (1 - beta^(t+1)),
// where t counts the finite values seen; a non-finite x leaves the average alone and gives NaN.
class SmoothedLoss {
 public:
  explicit SmoothedLoss(double beta = 0.98) : beta_(beta) {}
  double add(double x);
  double value() const;
  int64_t count() const { return n_; }

 private:
  double beta_, avg_ = 0, pow_ = 1;
  int64_t n_ = 0;
};

}  // namespace cyclone::train
