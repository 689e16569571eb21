// The policy conveniences of run.h ("finder" rates, *_epochs counts) and best_lr's flags as a
// RunSpec.
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "cyclone/train/cli.h"
#include "cyclone/train/run.h"

namespace cyclone::train {

using json = nlohmann::json;

namespace {

// "finder", "finder*X", "X*finder", "finder/X" -> chosen · X or chosen / X.
double resolve_rate(const std::string& text, const std::string& field,
                    std::optional<double> chosen) {
  auto bad = [&](const std::string& why) {
    throw UsageError("policy field '" + field + "': '" + text + "' " + why);
  };
  std::string t;
  for (char c : text)
    if (c != ' ') t += c;
  if (t.rfind("finder", 0) != 0 && (t.size() < 7 || t.compare(t.size() - 7, 7, "*finder") != 0))
    bad("is not a number nor a finder expression (\"finder\", \"finder*0.1\", \"finder/10\")");
  if (!chosen)
    bad("needs a rate from the range test, but none runs before it (add \"lr_finder\"; with "
        "phases, an lr_find phase before this one)");
  double factor = 1;
  bool divide = false;
  std::string num;
  if (t == "finder") return *chosen;
  if (t.rfind("finder*", 0) == 0) {
    num = t.substr(7);
  } else if (t.rfind("finder/", 0) == 0) {
    num = t.substr(7);
    divide = true;
  } else if (t.size() > 7 && t.compare(t.size() - 7, 7, "*finder") == 0) {
    num = t.substr(0, t.size() - 7);
  } else {
    bad("is not a finder expression (\"finder\", \"finder*0.1\", \"finder/10\")");
  }
  char* end = nullptr;
  factor = std::strtod(num.c_str(), &end);
  if (num.empty() || *end != '\0' || !std::isfinite(factor) || factor <= 0)
    bad("has a factor that is not a positive number");
  return divide ? *chosen / factor : *chosen * factor;
}

void resolve_node(json& j, const std::string& path, std::optional<double> chosen,
                  int64_t steps_per_epoch) {
  if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i)
      resolve_node(j[i], path + "[" + std::to_string(i) + "]", chosen, steps_per_epoch);
    return;
  }
  if (!j.is_object()) return;
  json out = json::object();
  for (auto& [k, v] : j.items()) {
    const std::string field = path.empty() ? k : path + "." + k;
    const std::string suffix = "_epochs";
    if (k.size() > suffix.size() &&
        k.compare(k.size() - suffix.size(), suffix.size(), suffix) == 0) {
      std::string key = k.substr(0, k.size() - suffix.size());
      if (key == "total") key = "total_steps";
      auto to_steps = [&](const json& e) -> int64_t {
        if (!e.is_number() || !(e.get<double>() > 0))
          throw UsageError("policy field '" + field + "' must be a positive number of epochs");
        return std::max<int64_t>(1, std::llround(e.get<double>() * steps_per_epoch));
      };
      if (v.is_array()) {
        json arr = json::array();
        for (const json& e : v) arr.push_back(to_steps(e));
        out[key] = arr;
      } else {
        out[key] = to_steps(v);
      }
      if (j.contains(key))
        throw UsageError("policy fields '" + field + "' and '" + key + "' both set");
      continue;
    }
    if (v.is_string() && k != "policy" && k != "mode" && k != "scale_mode" &&
        k != "anneal_strategy" && k != "threshold_mode") {
      const std::string s = v.get<std::string>();
      if (s.find("finder") != std::string::npos) {
        out[k] = resolve_rate(s, field, chosen);
        continue;
      }
    }
    json copy = v;
    resolve_node(copy, field, chosen, steps_per_epoch);
    out[k] = copy;
  }
  j = out;
}

}  // namespace

std::string resolve_policy_json(const std::string& policy_json, std::optional<double> chosen_lr,
                                int64_t steps_per_epoch) {
  json j;
  try {
    j = json::parse(policy_json);
  } catch (const json::exception& e) {
    throw UsageError(std::string("policy: invalid JSON: ") + e.what());
  }
  if (!j.is_object()) throw UsageError("policy: must be a JSON object");
  resolve_node(j, "", chosen_lr, std::max<int64_t>(1, steps_per_epoch));
  return j.dump();
}

RunSpec run_spec_from(const BestLrOptions& o) {
  validate(o);
  RunSpec s;
  s.program = "best_lr";
  s.dataset = o.dataset;
  s.data_dir = o.data_dir;
  s.download = !o.no_download;
  s.manifest = o.manifest;
  s.validation_fraction = o.validation_fraction;
  s.augment = o.augment == "auto" ? -1 : o.augment == "on" ? 1 : 0;
  s.pad_to = o.pad_to;
  s.batch_size = o.batch_size;
  s.workers = static_cast<int>(o.workers);
  s.model = o.model.empty() ? default_model_for(o.dataset) : o.model;
  s.activation = o.activation;
  s.initializer = o.kernel_initializer;
  s.device = o.device;
  s.seed = o.seed;
  s.optimizer = o.optimizer;
  json opt = {{"weight_decay", o.weight_decay}};
  const bool adam_like = o.optimizer == "adam" || o.optimizer == "nadam";
  if (adam_like) {
    opt["beta1"] = o.momentum;
  } else {
    opt["momentum"] = o.momentum;
  }
  s.optimizer_json = opt.dump();

  // Written so they read back exactly (std::to_string's six decimals made 1e-7 "0.000000").
  const std::string hi = "finder*" + format_number(o.lr_max_multiplier);
  const std::string lo = "finder*" + format_number(o.lr_min_multiplier);
  json pol;
  if (!o.cycle) {
    pol = {{"policy", "constant"}, {"lr", hi}};
  } else if (o.policy == "triangular" || o.policy == "triangular2" || o.policy == "exp_range") {
    pol = {{"policy", o.policy},
           {"base_lr", lo},
           {"max_lr", hi},
           {"step_size_epochs", o.step_size_epochs}};
    if (o.policy == "exp_range") pol["gamma"] = o.gamma;
  } else if (o.policy == "one_cycle") {
    pol = {{"policy", "one_cycle"},
           {"max_lr", hi},
           {"total_epochs", o.num_epochs},
           {"div_factor", o.lr_max_multiplier / o.lr_min_multiplier}};
    // The top of the momentum cycle: beta1 for Adam and NAdam, and --momentum when given (SGD
    // and RMSprop otherwise keep 1cycle's 0.95); the cycle runs down to 0.85, or stays at a top
    // below that.
    if (adam_like || o.momentum_given) {
      pol["max_momentum"] = o.momentum;
      pol["base_momentum"] = std::min(0.85, o.momentum);
    }
  } else {  // sgdr: one restart every full cycle (two half-cycles)
    pol = {{"policy", "sgdr"},
           {"lr", hi},
           {"min_lr", lo},
           {"cycle_len_epochs", 2 * o.step_size_epochs}};
  }
  s.policy_json = pol.dump();
  s.fixed_lr = o.skip_test;
  s.finder.enabled = !o.skip_test.has_value();
  LrFinderOptions& f = s.finder.options;
  f.start_lr = o.lr_min;
  f.end_lr = o.lr_max;
  f.num_steps = o.num_learning_batches;
  f.exponential = o.lr_finder_mode == "exponential";
  f.smooth_beta = o.smooth_beta;
  f.diverge_th = o.diverge_th;
  f.val_every = o.lr_finder_val_every;
  f.val_batches = o.lr_finder_val_batches;
  f.clip_grad_norm = o.clip_grad_norm;
  s.finder.suggestion = o.suggestion;
  s.finder.repeats = o.lr_finder_repeats;
  s.finder.momentum_test = o.momentum_test;
  s.finder.wd_test = o.wd_test;

  TrainerOptions& t = s.trainer;
  t.epochs = o.num_epochs;
  t.limit_train_batches = o.limit_train_batches;
  s.limit_eval_batches = o.limit_eval_batches;
  t.clip_grad_norm = o.clip_grad_norm;
  s.lr_scaling = o.lr_scaling;
  s.lr_warmup_epochs = o.lr_warmup_epochs;
  s.sync_batch_norm = o.sync_bn;
  t.sync_every = o.sync_every;
  t.cuda_graph = !o.no_cuda_graph;
  s.precision = o.precision;
  s.channels_last = o.channels_last;
  t.checkpoint_every = o.checkpoint_every;
  t.early_stop_patience = o.early_stop_patience;
  t.snapshot_ensemble = o.cycle && o.policy == "sgdr";
  s.log_dir = o.log_dir;
  s.plots = !o.no_plots;
  s.save_model = o.save_model;
  s.resume = o.resume;
  s.summary_only = o.summary;
  return s;
}

}  // namespace cyclone::train
