// The data-parallel parts of a run (run_detail.h): the ranks' agreement check and the rate
// scaling rule.
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "cyclone/train/cli.h"
#include "cyclone/train/log.h"
#include "cyclone/train/run_detail.h"

namespace cyclone::train::detail {

using json = nlohmann::json;

std::string rank_fingerprint(const RunContext& c, Module& model) {
  const RunSpec& s = c.spec;
  json shapes = json::array();
  for (const auto& [name, t] : model.named_parameters()) shapes.push_back(name + t.shape().str());
  return json{{"program", s.program},
              {"dataset", s.dataset},
              {"train_samples", c.train_set.size()},
              {"eval_samples", c.eval_set.size()},
              {"model", c.model_name},
              {"parameters", shapes},
              {"device_type", c.device.is_cuda() ? "cuda" : "cpu"},
              {"batch_size", s.batch_size},
              {"eval_batch_size", s.eval_batch_size},
              {"seed", s.seed},
              {"augment", s.augment},
              {"optimizer", s.optimizer},
              {"optimizer_options", s.optimizer_json},
              {"policy", s.policy_json},
              {"fixed_lr", s.fixed_lr ? json(*s.fixed_lr) : json(nullptr)},
              {"lr_finder", s.finder.enabled},
              {"lr_finder_steps", s.finder.options.num_steps},
              {"lr_finder_epochs", s.finder.epochs},
              {"lr_finder_repeats", s.finder.repeats},
              {"epochs", s.trainer.epochs},
              {"limit_train_batches", s.trainer.limit_train_batches},
              {"clip_grad_norm", s.trainer.clip_grad_norm},
              {"lr_scaling", s.lr_scaling},
              {"lr_warmup_epochs", s.lr_warmup_epochs},
              {"sync_batch_norm", s.sync_batch_norm},
              {"precision", s.precision},
              {"channels_last", s.channels_last},
              {"resume", s.resume}}
      .dump();
}

void apply_lr_scaling(RunContext& c, TrainerOptions& options, int ranks, bool rate_from_finder,
                      int64_t steps_per_epoch) {
  const RunSpec& s = c.spec;
  if (s.lr_scaling != "linear" && s.lr_scaling != "sqrt" && s.lr_scaling != "none")
    throw UsageError("lr_scaling '" + s.lr_scaling + "' is not one of linear, sqrt, none");
  if (!std::isfinite(s.lr_warmup_epochs))
    throw UsageError("lr_warmup_epochs must be a number (< 0: the default)");
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
  const int64_t warmup = factor == 1 ? 0
                         : s.lr_warmup_epochs >= 0
                             ? std::llround(s.lr_warmup_epochs * steps_per_epoch)
                             : std::min<int64_t>(5 * steps_per_epoch, total / 5);
  options.lr_scale = factor;
  options.lr_scale_warmup_steps = warmup;
  if (factor != 1)
    log_print(
        "%s: rates x %.4g for the global batch (%s scaling over %d ranks), reached after "
        "%lld warmup steps\n",
        s.program.c_str(), factor, s.lr_scaling.c_str(), ranks, static_cast<long long>(warmup));
  c.summary["lr_scale"] = factor;
  c.summary["lr_scale_warmup_steps"] = warmup;
}

}  // namespace cyclone::train::detail
