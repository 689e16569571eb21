// The data-parallel parts of a run (run_detail.h): the ranks' agreement check and the rate
// scaling rule.
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "cyclone/core/progress.h"
#include "cyclone/train/cli.h"
#include "cyclone/train/log.h"
#include "cyclone/train/run_detail.h"

namespace cyclone::train::detail {

using json = nlohmann::json;

namespace {
json finder_settings_json(const FinderSpec& f) {
  const LrFinderOptions& o = f.options;
  return json{{"enabled", f.enabled},
              {"epochs", f.epochs},
              {"suggestion", f.suggestion},
              {"repeats", f.repeats},
              {"momentum_test", f.momentum_test},
              {"wd_test", f.wd_test},
              {"start_lr", o.start_lr},
              {"end_lr", o.end_lr},
              {"num_steps", o.num_steps},
              {"exponential", o.exponential},
              {"smooth_beta", o.smooth_beta},
              {"diverge_th", o.diverge_th},
              {"max_skips", o.max_skips},
              {"val_every", o.val_every},
              {"val_batches", o.val_batches},
              {"clip_grad_norm", o.clip_grad_norm},
              {"label_smoothing", o.label_smoothing},
              {"first_epoch", o.first_epoch},
              {"restore", o.restore},
              {"sync_every", o.sync_every},
              {"cuda_graph", o.cuda_graph}};
}

json trainer_settings_json(const TrainerOptions& t) {
  json phases = json::array();
  for (const PhaseChange& p : t.phases)
    phases.push_back({{"epoch", p.epoch}, {"freeze", p.freeze}, {"unfreeze", p.unfreeze}});
  return json{{"epochs", t.epochs},
              {"limit_train_batches", t.limit_train_batches},
              {"clip_grad_norm", t.clip_grad_norm},
              {"label_smoothing", t.label_smoothing},
              {"max_consecutive_skips", t.max_consecutive_skips},
              {"loss_scale",
               {t.loss_scale.init_scale, t.loss_scale.growth_factor, t.loss_scale.backoff_factor,
                t.loss_scale.growth_interval}},
              {"checkpoint_every", t.checkpoint_every},
              {"checkpoint_every_steps", t.checkpoint_every_steps},
              {"early_stop_patience", t.early_stop_patience},
              {"early_stop_min_delta", t.early_stop_min_delta},
              {"early_stop_monitor", t.early_stop_monitor},
              {"early_stop_mode", t.early_stop_mode},
              {"eval_split", t.eval_split},
              {"eval_modules", t.eval_modules},
              {"snapshot_ensemble", t.snapshot_ensemble},
              {"phases", phases},
              {"sync_every", t.sync_every},
              {"cuda_graph", t.cuda_graph}};
}
}  // namespace

// Everything that decides a step's arithmetic or which collectives run, flat so that a mismatch
// names the one setting. Left out, because each rank may set them for itself without changing
// the steps: where files and data live (log_dir, data_dir, download, manifest, checkpoint_dir,
// plots, training_log, save_model, model_checkpoint, tensorboard, log_every_steps,
// keep_checkpoints, progress), the loader's worker threads, the GPU index and memory cap.
std::string rank_fingerprint(const RunSpec& s, Device device) {
  json j{{"program", s.program},
         {"dataset", s.dataset},
         {"source_split", s.source_split},
         {"validation_fraction", s.validation_fraction},
         {"train_fraction", s.train_fraction},
         {"test_fraction", s.test_fraction},
         {"augment", s.augment},
         {"batch_size", s.batch_size},
         {"eval_batch_size", s.eval_batch_size},
         {"model", s.model},
         {"activation", s.activation},
         {"initializer", s.initializer},
         {"dropout", s.dropout},
         {"filters", s.filters},
         {"model_fname", s.model_fname},
         {"partial", s.partial},
         {"new_head", s.new_head},
         {"device_type", device.is_cuda() ? "cuda" : "cpu"},
         {"seed", s.seed},
         {"optimizer", s.optimizer},
         {"optimizer_options", s.optimizer_json},
         {"policy", s.policy_json},
         {"fixed_lr", s.fixed_lr ? json(*s.fixed_lr) : json(nullptr)},
         {"lr_find_only", s.finder_only},
         {"lr_scaling", s.lr_scaling},
         {"lr_warmup_epochs", s.lr_warmup_epochs},
         {"sync_batch_norm", s.sync_batch_norm},
         {"precision", s.precision},
         {"channels_last", s.channels_last},
         {"loss", s.loss},
         {"metrics", s.metrics},
         {"phases", s.phases.size()},
         {"resume", s.resume}};
  json groups = json::array();
  for (const LayerGroup& g : s.layer_groups) groups.push_back({g.name, g.prefixes});
  j["layer_groups"] = groups;
  const json finder = finder_settings_json(s.finder), trainer = trainer_settings_json(s.trainer);
  for (const auto& [k, v] : finder.items()) j["lr_finder." + k] = v;
  for (const auto& [k, v] : trainer.items()) j["trainer." + k] = v;
  // Only when set: checkpoints written before the option have no key, and resume them as before.
  if (s.pad_to > 0) j["pad_to"] = s.pad_to;
  // Each phase of a multi-phase run, for the ranks' check (resume_settings drops them: a resumed
  // run finds its phases' state by their names).
  for (size_t i = 0; i < s.phases.size(); ++i) {
    const PhaseSpec& p = s.phases[i];
    json lr_mult = json::array();
    for (const auto& [g, m] : p.lr_mult) lr_mult.push_back({g, m});
    const std::string key = "phases[" + std::to_string(i) + "].";
    const json phase{{"name", p.name},
                     {"epochs", p.epochs},
                     {"lr_find", p.lr_find},
                     {"policy", p.policy_json},
                     {"freeze", p.freeze},
                     {"lr_mult", lr_mult},
                     {"precompute", p.precompute},
                     {"augment", p.augment}};
    for (const auto& [k, v] : phase.items()) j[key + k] = v;
    if (!p.lr_find) continue;
    const json phase_finder = finder_settings_json(p.finder);  // named: items() does not own it
    for (const auto& [k, v] : phase_finder.items()) j[key + "lr_finder." + k] = v;
  }
  return j.dump();
}

std::string data_fingerprint(const RunContext& c, Module& model) {
  json shapes = json::array();
  for (const auto& [name, t] : model.named_parameters()) shapes.push_back(name + t.shape().str());
  return json{{"train_samples", c.train_set.size()},
              {"eval_samples", c.eval_set.size()},
              {"test_samples", c.test_set.size()},
              {"model", c.model_name},
              {"parameters", shapes}}
      .dump();
}

bool uses_finder_rate(const std::string& policy_json, int64_t steps_per_epoch) {
  // A policy that does not name the finder resolves the same at any rate.
  return resolve_policy_json(policy_json, 1.0, steps_per_epoch) !=
         resolve_policy_json(policy_json, 2.0, steps_per_epoch);
}

void apply_lr_scaling(RunContext& c, TrainerOptions& options, int ranks, bool rate_from_finder,
                      int64_t steps_per_epoch, json& record, const json* previous) {
  const RunSpec& s = c.spec;
  if (s.lr_scaling != "linear" && s.lr_scaling != "sqrt" && s.lr_scaling != "none")
    throw UsageError("lr_scaling '" + s.lr_scaling + "' is not one of linear, sqrt, none");
  // 1e6 epochs as the apps allow: its step count stays far inside int64's range.
  if (!(s.lr_warmup_epochs <= 1e6))
    throw UsageError("lr_warmup_epochs " + format_double("%g", s.lr_warmup_epochs) +
                     " must be a number <= 1e6 (< 0: the default)");
  if (ranks <= 1) return;
  double factor = 1;
  if (rate_from_finder) {
    log_print(
        "%s: the range test ran at the global batch: its rate is used as found (no %s "
        "scaling)\n",
        s.program.c_str(), s.lr_scaling.c_str());
  } else if (s.lr_scaling == "linear") {
    factor = ranks;
  } else if (s.lr_scaling == "sqrt") {
    factor = std::sqrt(static_cast<double>(ranks));
  }
  const int64_t total = steps_per_epoch * options.epochs;
  int64_t warmup = factor == 1               ? 0
                   : s.lr_warmup_epochs >= 0 ? std::llround(s.lr_warmup_epochs * steps_per_epoch)
                                             : std::min<int64_t>(5 * steps_per_epoch, total / 5);
  // The default is a fifth of the run, capped: a resume that changes the epoch count keeps the
  // ramp the run started with (its steps so far were taken on it).
  if (factor != 1 && s.lr_warmup_epochs < 0 && previous && previous->is_object())
    if (const auto it = previous->find("lr_scale_warmup_steps");
        it != previous->end() && it->is_number_integer() && it->get<int64_t>() >= 0)
      warmup = it->get<int64_t>();
  options.lr_scale = factor;
  options.lr_scale_warmup_steps = warmup;
  if (factor != 1)
    log_print(
        "%s: rates x %.4g for the global batch (%s scaling over %d ranks), reached after "
        "%lld warmup steps\n",
        s.program.c_str(), factor, s.lr_scaling.c_str(), ranks, static_cast<long long>(warmup));
  record["lr_scale"] = factor;
  record["lr_scale_warmup_steps"] = warmup;
}

}  // namespace cyclone::train::detail
