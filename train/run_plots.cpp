#include "cyclone/train/run_plots.h"

#include <algorithm>
#include <cmath>

#include "cyclone/core/progress.h"
#include "cyclone/train/distributed.h"
#include "cyclone/train/plot.h"

namespace cyclone::train {

namespace {

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                         "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

}  // namespace

// The range-test plot: smoothed loss against the rate on a log axis, the raw loss faint behind
// it, the suggestions marked; the y axis clipped so the final blow-up does not flatten the rest.
void plot_lr_finder(const std::vector<const LrFinderResult*>& runs, const Suggestions& s,
                    const std::string& path, const std::string& title) {
  if (!writes_files()) return;
  Plot p;
  p.title = title;
  p.x_label = "learning rate";
  p.left_label = "loss";
  p.x_log = true;
  double first = NAN, lo = INFINITY;
  for (size_t k = 0; k < runs.size(); ++k) {
    const LrFinderResult& r = *runs[k];
    PlotSeries raw;
    raw.x = r.lrs;
    raw.y = r.losses;
    raw.color = kColors[k % 8];
    raw.opacity = 0.25;
    raw.width = 1;
    raw.label = k == 0 ? "loss" : "";
    PlotSeries sm;
    sm.x = r.lrs;
    sm.y = r.smoothed;
    sm.color = kColors[k % 8];
    sm.label = runs.size() > 1 ? "smoothed, run " + std::to_string(k + 1) : "smoothed loss";
    p.series.push_back(raw);
    p.series.push_back(sm);
    for (double v : r.smoothed)
      if (std::isfinite(v)) {
        if (std::isnan(first)) first = v;
        lo = std::min(lo, v);
      }
  }
  if (std::isfinite(first) && std::isfinite(lo)) {
    p.y_max = std::max(first, lo) * 1.5 + 1e-12;
    if (lo > 0) p.y_min = lo * 0.8;
    if (p.y_min && *p.y_min >= *p.y_max) p.y_min.reset();
  }
  if (s.valid) {
    p.markers.push_back(
        {s.min_loss_lr, "min loss " + format_double("%.4g", s.min_loss_lr), "#d62728"});
    p.markers.push_back(
        {s.min_loss_lr_div10, "min/10 " + format_double("%.4g", s.min_loss_lr_div10), "#ff7f0e"});
    p.markers.push_back(
        {s.steepest_lr, "steepest " + format_double("%.4g", s.steepest_lr), "#2ca02c"});
    p.markers.push_back({s.valley_lr, "valley " + format_double("%.4g", s.valley_lr), "#9467bd"});
  }
  write_svg(p, path);
}

void plot_lr_sweep(const std::vector<SweepCurve>& curves, const std::string& what,
                   const std::string& path) {
  if (!writes_files()) return;
  Plot p;
  p.title = "LR range tests at several values of " + what;
  p.x_label = "learning rate";
  p.left_label = "smoothed loss";
  p.x_log = true;
  double first = NAN, lo = INFINITY;
  for (size_t k = 0; k < curves.size(); ++k) {
    PlotSeries s;
    s.x = curves[k].result.lrs;
    s.y = curves[k].result.smoothed;
    s.color = kColors[k % 8];
    s.label = what + " " + format_double("%.4g", curves[k].value);
    p.series.push_back(s);
    for (double v : s.y)
      if (std::isfinite(v)) {
        if (std::isnan(first)) first = v;
        lo = std::min(lo, v);
      }
  }
  if (std::isfinite(first)) p.y_max = std::max(first, lo) * 1.5 + 1e-12;
  write_svg(p, path);
}

void plot_schedule(const schedulers::Policy& policy, int64_t total_steps, const std::string& path,
                   const TrainerOptions* scaling) {
  if (!writes_files()) return;
  Plot p;
  p.title = "schedule: " + policy.name();
  p.x_label = "step";
  p.left_label = "learning rate";
  p.right_label = "momentum";
  const int64_t n = std::min<int64_t>(total_steps, 2000);
  PlotSeries lr{"lr", {}, "#1f77b4"}, mom{"momentum", {}, "#d62728", true};
  bool has_m = false;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = n > 1 ? (total_steps - 1) * i / (n - 1) : 0;
    p.x.push_back(static_cast<double>(t));
    lr.y.push_back(scaling ? scaled_lr(*scaling, policy.lr(t), t) : policy.lr(t));
    const auto m = policy.momentum(t);
    has_m = has_m || m.has_value();
    mom.y.push_back(m.value_or(NAN));
  }
  p.series.push_back(lr);
  if (has_m) p.series.push_back(mom);
  write_svg(p, path);
}

}  // namespace cyclone::train
