#include "cyclone/train/suggest.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "cyclone/core/error.h"

namespace cyclone::train {

double SmoothedLoss::add(double x) {
  if (!std::isfinite(x)) return std::numeric_limits<double>::quiet_NaN();
  avg_ = beta_ * avg_ + (1 - beta_) * x;
  pow_ *= beta_;
  ++n_;
  return value();
}

double SmoothedLoss::value() const {
  return n_ == 0 ? std::numeric_limits<double>::quiet_NaN() : avg_ / (1 - pow_);
}

Suggestions suggest_lr(const std::vector<double>& lrs, const std::vector<double>& smoothed) {
  CYCLONE_CHECK(lrs.size() == smoothed.size(), "suggest_lr: ", lrs.size(), " rates but ",
                smoothed.size(), " losses");
  std::vector<double> lr, loss;  // the finite points, in order
  for (size_t i = 0; i < lrs.size(); ++i)
    if (std::isfinite(smoothed[i]) && std::isfinite(lrs[i]) && lrs[i] > 0) {
      lr.push_back(lrs[i]);
      loss.push_back(smoothed[i]);
    }
  Suggestions s;
  if (lr.size() < 2) return s;
  s.valid = true;
  size_t best = 0;
  for (size_t i = 1; i < loss.size(); ++i)
    if (loss[i] < loss[best]) best = i;
  s.min_loss_lr = lr[best];
  s.min_loss = loss[best];
  s.min_loss_lr_div10 = lr[best] / 10;

  // fast.ai's window: skip the first 10% and the last 5 points when enough remain.
  size_t lo = loss.size() / 10, hi = loss.size() >= lo + 7 ? loss.size() - 5 : loss.size();
  if (hi - lo < 2) lo = 0, hi = loss.size();

  // Steepest descent (fastai's `steep`, one of lr_find's suggestion functions): searched only on
  // the descending part of the curve, the points at or before the minimum. fastai searches the
  // whole window, so a short or noisy test whose loss blows up after its minimum can name a rate
  // past it (a sharp drop between two blown-up points); a rate past the minimum is never one to
  // train at.
  size_t dlo = lo, dhi = std::min(hi, best + 1);
  if (dhi < dlo + 2) dlo = 0, dhi = best + 1;
  size_t steep = 0;  // a curve that only rises: its smallest rate
  double steepest = std::numeric_limits<double>::infinity();
  for (size_t i = dlo; i + 1 < dhi; ++i) {
    const double dx = std::log(lr[i + 1]) - std::log(lr[i]);
    if (!(dx > 0)) continue;  // a linear ramp's repeated end rate, or a non-increasing rate
    const double g = (loss[i + 1] - loss[i]) / dx;
    if (g < steepest) steepest = g, steep = i;
  }
  s.steepest_lr = lr[steep];

  // Valley (fastai's `valley`, another of lr_find's suggestion functions): the longest decreasing
  // subsequence, O(n^2) as fastai (n is at most a few thousand). A subsequence of length L ending
  // at max_end starts at max_end + 1 - L at the earliest. fastai takes max_end - L, one before:
  // when the whole prefix decreases that is -1, which Python reads as the last point, so a short
  // curve (a held-out test of a few points) got the blown-up end as its valley.
  const size_t n = hi - lo;
  std::vector<size_t> lds(n, 1);
  size_t max_start = 0, max_end = 0;
  for (size_t i = 1; i < n; ++i) {
    for (size_t j = 0; j < i; ++j)
      if (loss[lo + i] < loss[lo + j] && lds[i] < lds[j] + 1) lds[i] = lds[j] + 1;
    if (lds[max_end] < lds[i]) {
      max_end = i;
      max_start = max_end + 1 - lds[max_end];
    }
  }
  const double sections = static_cast<double>(max_end - max_start) / 3;
  const size_t idx = max_start + static_cast<size_t>(sections) + static_cast<size_t>(sections / 2);
  s.valley_lr = lr[lo + std::min(idx, n - 1)];
  return s;
}

const std::vector<std::string>& suggestion_names() {
  static const std::vector<std::string> names = {"min_loss", "min_loss_div10", "steepest",
                                                 "valley"};
  return names;
}

double pick_suggestion(const Suggestions& s, const std::string& name) {
  if (name == "min_loss") return s.min_loss_lr;
  if (name == "min_loss_div10") return s.min_loss_lr_div10;
  if (name == "steepest") return s.steepest_lr;
  if (name == "valley") return s.valley_lr;
  CYCLONE_THROW("unknown suggestion '", name,
                "' (known: min_loss, min_loss_div10, steepest, valley)");
}

}  // namespace cyclone::train
