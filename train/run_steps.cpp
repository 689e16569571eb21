// The steps every run shares (run_detail.h): the optimizer, the range test with its files and
// plots, the policy, ModelCheckpoint, the summary.
#include "cyclone/train/run.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cyclone/core/cuda/caching_allocator.h"
#include "cyclone/core/cuda/runtime.h"
#include "cyclone/core/device.h"
#include "cyclone/core/file_util.h"
#include "cyclone/core/progress.h"
#include "cyclone/data/registry.h"
#include "cyclone/models/registry.h"
#include "cyclone/optim/optimizer.h"
#include "cyclone/schedulers/policy.h"
#include "cyclone/train/checkpoint.h"
#include "cyclone/train/cli.h"
#include "cyclone/train/distributed.h"
#include "cyclone/train/interrupt.h"
#include "cyclone/train/log.h"
#include "cyclone/train/run_detail.h"

#include "cyclone/train/run_plots.h"
#include "cyclone/train/weights.h"

namespace cyclone::train {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json finder_json(const LrFinderResult& r) {
  return {{"steps", r.stopped_at},
          {"diverged", r.diverged},
          {"interrupted", r.interrupted},
          {"skipped", r.skipped},
          {"seconds", r.seconds},
          {"min_loss_lr", r.suggestions.min_loss_lr},
          {"min_loss_lr_div10", r.suggestions.min_loss_lr_div10},
          {"steepest_lr", r.suggestions.steepest_lr},
          {"valley_lr", r.suggestions.valley_lr},
          {"min_loss", r.suggestions.min_loss}};
}

json finder_block(const LrFinderOptions& fo, const RepeatedLrFinder& rep) {
  json runs = json::array();
  for (const auto& r : rep.runs) runs.push_back(finder_json(r));
  return {{"start_lr", fo.start_lr},
          {"end_lr", fo.end_lr},
          {"num_steps", fo.num_steps},
          {"mode", fo.exponential ? "exponential" : "linear"},
          {"runs", runs}};
}

json spread_json(const RepeatedLrFinder::Spread& s) {
  return {{"median", s.median}, {"min", s.min}, {"max", s.max}, {"log10_std", s.log10_std}};
}

void scrub(json& j) {
  if (j.is_number_float() && !std::isfinite(j.get<double>())) j = nullptr;
  if (j.is_structured())
    for (auto& v : j) scrub(v);
}

}  // namespace

namespace detail {

namespace {

// Ctrl-C / SIGTERM during a range test: nothing trained yet, so nothing to checkpoint. The partial
// curves are written (CSVs and plots, by the caller), said in one line and recorded in
// summary.json; the run ends as an interrupted training does (exit 0), without training.
[[noreturn]] void stop_interrupted(RunContext& c, const LrFinderResult& r, int64_t num_steps,
                                   const std::string& files) {
  const std::string line = std::string(interrupt_name(interrupt_signal())) +
                           " during the LR range test at step " + std::to_string(r.stopped_at) +
                           " of " + std::to_string(num_steps) + ": stopped without training" +
                           (files.empty() ? std::string() : "; the partial curve is in " + files);
  log_print("%s: %s\n", c.spec.program.c_str(), line.c_str());
  c.summary["status"] = "interrupted";
  c.summary["message"] = line;
  RunOutcome outcome;
  write_summary(c, outcome);
  throw Interrupted(line);
}

}  // namespace

// What "augment: true" means per dataset: CIFAR's crop 32 with 4-pixel padding and horizontal
// flip; for 28 x 28 images a 2-pixel-padded crop, with flips for Fashion-MNIST's garments (a
// mirrored shirt is a shirt) but not for digits (a mirrored 2 is no digit).
data::Augment standard_augment(const std::string& dataset) {
  if (dataset == "mnist") return data::Augment{2, false, 0};
  if (dataset == "fashion_mnist") return data::Augment{2, true, 0};
  return data::Augment::cifar();
}

std::unique_ptr<optim::Optimizer> make_run_optimizer(const RunSpec& spec, NamedTensors params,
                                                     const json& groups) {
  try {
    json oj = json::parse(spec.optimizer_json);
    if (!oj.is_object()) throw UsageError("optimizer options must be a JSON object");
    if (!oj.contains("lr")) oj["lr"] = 1e-3;
    if (!groups.is_null()) {
      if (oj.contains("groups"))
        throw UsageError(
            "optimizer.groups and the phases' lr_mult both set per-layer rates; give one");
      oj["groups"] = groups;
    }
    return optim::make_optimizer(spec.optimizer, std::move(params), oj.dump());
  } catch (const json::exception& e) {
    throw UsageError(std::string("optimizer options: invalid JSON: ") + e.what());
  } catch (const UsageError&) {
    throw;
  } catch (const Error& e) {
    throw UsageError(e.message());
  }
}

double run_finder(RunContext& c, Module& model, optim::Optimizer& opt, data::DataLoader& train,
                  data::DataLoader* val, const FinderSpec& finder, const fs::path& dir, json& out,
                  const std::string& plot_path) {
  const RunSpec& spec = c.spec;
  const std::string& prog = spec.program;
  LrFinderOptions fo = finder.options;
  fo.generators = {c.dropout_gen};
  fo.sync_every = spec.trainer.sync_every;  // the trainer's read-back rule, for the test too
  fo.cuda_graph = spec.trainer.cuda_graph;
  if (!writes_files()) fo.progress_mode = -2;
  const int64_t limit = spec.trainer.limit_train_batches;
  const int64_t per_epoch = limit > 0 ? std::min(limit, train.num_batches()) : train.num_batches();
  if (finder.epochs > 0)
    fo.num_steps = std::max<int64_t>(2, std::llround(finder.epochs * per_epoch));
  if (limit > 0 && fo.num_steps > std::max<int64_t>(2, 10 * limit)) {
    // A smoke run's range test is short too; said, as the user asked for more steps.
    const int64_t asked = fo.num_steps;
    fo.num_steps = std::max<int64_t>(2, 10 * limit);
    log_print(
        "%s: the range test is shortened by %slimit_train_batches %lld to %lld steps (10 x "
        "%lld) from %lld\n",
        prog.c_str(), prog == "best_lr" ? "--" : "", static_cast<long long>(limit),
        static_cast<long long>(fo.num_steps), static_cast<long long>(limit),
        static_cast<long long>(asked));
  }
  log_print("%s: LR range test, %lld steps from %g to %g (%s ramp)\n", prog.c_str(),
            static_cast<long long>(fo.num_steps), fo.start_lr, fo.end_lr,
            fo.exponential ? "exponential" : "linear");
  InterruptGuard interrupts;  // from the first range test to the last sweep
  const RepeatedLrFinder rep = find_lr_repeated(model, opt, train, fo, finder.repeats, val);
  const LrFinderResult& first = rep.runs.front();
  std::string files = (dir / "lr_finder.csv").string();
  write_lr_finder_csv(first, files);
  for (size_t k = 1; k < rep.runs.size(); ++k)
    write_lr_finder_csv(rep.runs[k],
                        (dir / ("lr_finder_" + std::to_string(k + 1) + ".csv")).string());
  if (rep.runs.back().interrupted) {
    std::vector<const LrFinderResult*> rs;
    for (const auto& r : rep.runs) rs.push_back(&r);
    const std::string path = plot_path.empty() ? (dir / "lr_finder.svg").string() : plot_path;
    if ((spec.plots || !plot_path.empty()) && first.lrs.size() >= 2) {
      plot_lr_finder(rs, Suggestions{}, path,
                     "LR range test (interrupted): " + c.model_name + " on " + spec.dataset);
      files += " and " + path;
    }
    if (!writes_files()) files.clear();
    out["lr_finder"] = finder_block(fo, rep);
    stop_interrupted(c, rep.runs.back(), fo.num_steps, files);
  }
  Suggestions s = first.suggestions;
  if (rep.runs.size() > 1) {
    s.min_loss_lr = rep.min_loss_lr.median;
    s.min_loss_lr_div10 = rep.min_loss_lr_div10.median;
    s.steepest_lr = rep.steepest_lr.median;
    s.valley_lr = rep.valley_lr.median;
    s.valid = rep.min_loss_lr.median > 0;
  }
  if (!s.valid)
    throw Error(
        "the LR range test found no usable rate: the loss was not finite from its first "
        "steps; lower the start rate (now " +
        format_double("%.4g", fo.start_lr) + ") or check the data");
  const double chosen = pick_suggestion(s, finder.suggestion);
  log_print(
      "%s: suggestions  min_loss_lr %.4g  min_loss_lr/10 %.4g  steepest_lr %.4g  "
      "valley_lr %.4g\n",
      prog.c_str(), s.min_loss_lr, s.min_loss_lr_div10, s.steepest_lr, s.valley_lr);
  if (rep.runs.size() > 1)
    for (const char* n : {"min_loss", "steepest", "valley"}) {
      const auto sp = rep.of(n);
      log_print("%s: %zu runs: %s_lr median %.4g, range [%.4g, %.4g], spread %.2f decades\n",
                prog.c_str(), rep.runs.size(), n, sp.median, sp.min, sp.max, sp.log10_std);
    }
  log_print("%s: chosen rate %.4g (the %s suggestion%s)\n", prog.c_str(), chosen,
            finder.suggestion.c_str(),
            finder.suggestion == "min_loss"
                ? ", as the original best_lr.py: the edge of stability, which cyclic "
                  "policies cycle up to"
                : "");
  // A rate at an end of the sweep is not one the test found good: the loss never fell from the
  // first rate (the sweep starts too high), or was still falling at the last (it ends too low).
  if (const std::string edge = sweep_edge_warning(spec, first, chosen); !edge.empty()) {
    log_print("%s: warning: %s\n", prog.c_str(), edge.c_str());
    out["suggestion_warning"] = edge;
  }
  out["min_loss_lr"] = s.min_loss_lr;
  out["min_loss_lr_div10"] = s.min_loss_lr_div10;
  out["steepest_lr"] = s.steepest_lr;
  out["valley_lr"] = s.valley_lr;
  out["suggestion"] = finder.suggestion;
  out["chosen_lr"] = chosen;
  out["lr_finder"] = finder_block(fo, rep);
  if (rep.runs.size() > 1)
    out["lr_finder"]["spread"] = {{"min_loss_lr", spread_json(rep.min_loss_lr)},
                                  {"steepest_lr", spread_json(rep.steepest_lr)},
                                  {"valley_lr", spread_json(rep.valley_lr)},
                                  {"min_loss_lr_div10", spread_json(rep.min_loss_lr_div10)}};
  if (spec.plots || !plot_path.empty()) {
    std::vector<const LrFinderResult*> rs;
    for (const auto& r : rep.runs) rs.push_back(&r);
    const std::string path = plot_path.empty() ? (dir / "lr_finder.svg").string() : plot_path;
    plot_lr_finder(rs, s, path, "LR range test: " + c.model_name + " on " + spec.dataset);
    out["lr_finder_plot"] = path;
  }
  for (const auto& [what, values] : {std::pair{std::string("momentum"), finder.momentum_test},
                                     std::pair{std::string("weight_decay"), finder.wd_test}}) {
    if (values.empty()) continue;
    const auto curves = sweep_lr(model, opt, train, fo, what, values, val);
    json arr = json::array();
    std::string last_csv;
    for (const auto& cv : curves) {
      last_csv =
          (dir / ("lr_finder_" + what + "_" + format_double("%.4g", cv.value) + ".csv")).string();
      write_lr_finder_csv(cv.result, last_csv);
      json cj = finder_json(cv.result);
      cj[what] = cv.value;
      arr.push_back(cj);
    }
    out["lr_finder_" + what] = arr;
    if (spec.plots) plot_lr_sweep(curves, what, (dir / ("lr_finder_" + what + ".svg")).string());
    if (!curves.empty() && curves.back().result.interrupted)
      stop_interrupted(c, curves.back().result, fo.num_steps, writes_files() ? last_csv : "");
  }
  return chosen;
}

std::string sweep_edge_warning(const RunSpec& spec, const LrFinderResult& r, double chosen) {
  if (r.lrs.size() < 2 || !(chosen > 0)) return "";
  const bool best_lr = spec.program == "best_lr";
  const auto near = [&](double a) { return std::abs(chosen - a) <= 1e-9 * a; };
  if (chosen <= r.lrs.front() || near(r.lrs.front()))
    return "the chosen rate " + format_double("%.4g", chosen) +
           " is the range test's first: its loss only rose, so it says nothing about a good "
           "rate; lower " +
           (best_lr ? "--lr_min" : "lr_finder.start_lr") + " and run it again";
  if ((chosen >= r.lrs.back() || near(r.lrs.back())) && !r.diverged)
    return "the chosen rate " + format_double("%.4g", chosen) +
           " is the range test's last, its loss still falling: a higher rate may be better; "
           "raise " +
           (best_lr ? "--lr_max" : "lr_finder.end_lr") + " or " +
           (best_lr ? "--num_learning_batches" : "lr_finder.num_steps") + " to see where it turns";
  return "";
}

void check_policy_fits(const RunSpec& spec, int64_t steps_per_epoch) {
  const int64_t epochs = spec.trainer.epochs, limit = spec.trainer.limit_train_batches;
  const bool best_lr = spec.program == "best_lr";
  const std::string epochs_name = best_lr ? "--num_epochs" : "epochs";
  if (steps_per_epoch > 0 && epochs > INT64_MAX / steps_per_epoch)
    throw UsageError(epochs_name + " " + std::to_string(epochs) + " x " +
                     std::to_string(steps_per_epoch) +
                     " steps per epoch is more steps than a run can count");
  if (!spec.phases.empty()) {  // each training phase's policy, with the rate it will be given
    check_phase_policies(spec, spec.fixed_lr, steps_per_epoch, "");
    return;
  }
  // SGDR whose cycle rounds to one step never anneals (every step a restart at the top rate) and
  // would save a snapshot every step.
  if (const json pj = json::parse(spec.policy_json, nullptr, false);
      pj.is_object() && pj.value("policy", "") == "sgdr" && pj.contains("cycle_len_epochs")) {
    const double epochs_per_cycle = pj["cycle_len_epochs"].get<double>();
    if (std::llround(epochs_per_cycle * static_cast<double>(steps_per_epoch)) < 2)
      throw UsageError(
          (best_lr ? "--step_size_epochs " + format_number(epochs_per_cycle / 2)
                   : "policy.cycle_len_epochs " + format_number(epochs_per_cycle)) +
          " makes SGDR cycles of under 2 steps at " + std::to_string(steps_per_epoch) +
          " steps per epoch (no annealing, a restart every step): make it at least " +
          format_double("%.3g", (best_lr ? 1.0 : 2.0) / static_cast<double>(steps_per_epoch)));
  }
  try {
    check_policy_builds(spec.policy_json, spec.fixed_lr,
                        spec.finder.enabled ? &spec.finder : nullptr, steps_per_epoch, "");
  } catch (const Error& e) {
    if (!best_lr) throw UsageError(e.message());
    // best_lr builds the policy from its flags: say which of them to change, not the policy
    // field (pct_start, step_size) the user never wrote.
    std::string name = "constant";
    try {
      name = json::parse(spec.policy_json).value("policy", name);
    } catch (const json::exception&) {
    }
    // Only a policy that builds over more steps is refused for its step count; anything else
    // (a momentum out of the cycle's range) is not fixed by training longer.
    bool longer_fits = true;
    try {
      check_policy_builds(spec.policy_json, spec.fixed_lr,
                          spec.finder.enabled ? &spec.finder : nullptr, 1000000, "");
    } catch (const Error&) {
      longer_fits = false;
    }
    if (!longer_fits) throw UsageError("--policy=" + name + ": " + e.message());
    const int64_t total = steps_per_epoch * epochs;
    throw UsageError("--policy=" + name + " cannot run over " + std::to_string(total) +
                     " training step" + (total == 1 ? "" : "s") + " (--num_epochs " +
                     std::to_string(epochs) + " x " + std::to_string(steps_per_epoch) +
                     " steps per epoch" +
                     (limit > 0 ? ", --limit_train_batches " + std::to_string(limit) : "") +
                     "): raise --num_epochs" + (limit > 0 ? " or --limit_train_batches" : "") +
                     " (" + e.message() + ")");
  }
}

std::unique_ptr<schedulers::Policy> make_run_policy(const std::string& policy_text,
                                                    int64_t total_steps, const std::string& prog,
                                                    json* summary_out,
                                                    const TrainerOptions* scaling) {
  std::unique_ptr<schedulers::Policy> policy;
  try {
    policy = schedulers::make_policy(policy_text);
  } catch (const Error& e) {
    throw UsageError(e.message());
  }
  // The range over every step (a cyclic policy with a short cycle alternates between its ends,
  // which evenly spaced samples can miss entirely); past kExact steps, pairs of neighbouring steps
  // at evenly spaced points.
  constexpr int64_t kExact = int64_t{1} << 21, kPairs = 1 << 16;
  double lr_lo = INFINITY, lr_hi = 0;
  int64_t bad_step = -1;  // the first step visited whose rate is not a finite value >= 0
  double bad_lr = 0;
  auto visit = [&](int64_t t) {
    const double lr = scaling ? scaled_lr(*scaling, policy->lr(t), t) : policy->lr(t);
    lr_lo = std::min(lr_lo, lr);
    lr_hi = std::max(lr_hi, lr);
    if (bad_step < 0 && !(std::isfinite(lr) && lr >= 0)) {
      bad_step = t;
      bad_lr = lr;
    }
  };
  if (total_steps <= kExact) {
    for (int64_t t = 0; t < total_steps; ++t) visit(t);
  } else {
    for (int64_t i = 0; i < kPairs; ++i) {
      const auto t =
          static_cast<int64_t>(static_cast<long double>(total_steps - 2) * i / (kPairs - 1));
      visit(t);
      visit(t + 1);
    }
  }
  // Said before any step: the optimizer would refuse that rate mid-run, naming no policy.
  if (bad_step >= 0)
    throw UsageError(::cyclone::detail::str_cat(
        "the policy ", policy_text, " gives a learning rate of ", format_double("%g", bad_lr),
        " at step ", bad_step + 1, " of the run's ", total_steps,
        " (its values leave the finite numbers >= 0): change "
        "its fields (a gamma, a rate) so that every step's rate is finite"));
  log_print("%s: training %lld step%s with %s, lr in [%.4g, %.4g]\n", prog.c_str(),
            static_cast<long long>(total_steps), total_steps == 1 ? "" : "s", policy_text.c_str(),
            lr_lo, lr_hi);
  if (summary_out) {
    (*summary_out)["train_lr_min"] = lr_lo;
    (*summary_out)["train_lr_max"] = lr_hi;
    // The policy's own full form, which checkpoints keep: a resumed run (which knows only that)
    // writes the same summary.json as one that never stopped.
    (*summary_out)["policy"] = json::parse(policy->to_json());
  }
  return policy;
}

void check_checkpoint_policy(const std::string& trainer_json_path, const std::string& policy_text) {
  try {
    (void)schedulers::make_policy(policy_text);
  } catch (const Error& e) {
    throw Error(trainer_json_path + ": 'policy' is damaged (" + e.message() +
                "): resume from another checkpoint, or start a new run");
  }
}

void check_monitors_have_a_split(const RunSpec& spec) {
  if (spec.validation_fraction > 0) return;
  const bool best_lr = spec.program == "best_lr";
  const std::string split =
      best_lr ? "--validation_fraction=0.1" : "dataset.split_ratio.val (e.g. 0.1)";
  // best_lr's early stopping always watches val_accuracy; a config may watch the training loss.
  auto refuse = [&](const std::string& what, const std::string& monitor) {
    throw UsageError(origin_prefix(spec) + what + " watches '" + monitor +
                     "', a validation score, but there is no validation split: set " + split +
                     (best_lr ? "" : ", or watch the training 'loss'") +
                     " (the test set is never used to choose)");
  };
  const std::string& es = spec.trainer.early_stop_monitor;
  if (spec.trainer.early_stop_patience > 0 && watches_validation(es))
    refuse(best_lr ? "--early_stop_patience" : "callbacks.EarlyStopping.monitor", es);
  const std::string& mc = spec.model_checkpoint.monitor;
  if (spec.model_checkpoint.enabled && spec.model_checkpoint.save_best_only &&
      watches_validation(mc))
    refuse("callbacks.ModelCheckpoint.monitor (save_best_only)", mc);
}

std::function<void(const EpochStats&)> model_checkpoint_callback(RunContext& c, Module& model,
                                                                 bool resuming) {
  const ModelCheckpointSpec m = c.spec.model_checkpoint;
  const std::string file = m.save_best_only ? "best_model" : "model_checkpoint";
  const std::string path = (c.log_dir / (file + ".safetensors")).string();
  const std::string side = (c.log_dir / (file + ".json")).string();
  const bool maximize = monitor_maximizes(m.monitor, m.mode);
  // One best for the whole run: each phase's callback shares it, and a resumed run starts from
  // the record the interrupted one left (so both end with the same best weights).
  if (!c.checkpoint_best) {
    c.checkpoint_best = std::make_shared<double>(NAN);
    std::error_code ec;
    if (resuming && fs::exists(side, ec)) {
      try {
        const json j = json::parse(read_file(side, 1 << 20));
        const json& b =
            j.contains("best") && j.at("best").is_number() ? j.at("best") : j.at("value");
        if (b.is_number()) *c.checkpoint_best = b.get<double>();
      } catch (const std::exception&) {
        // An unreadable record only means the next epoch is taken as the best so far.
      }
    }
  }
  std::shared_ptr<double> best = c.checkpoint_best;
  c.summary["model_checkpoint"] = path;
  return [=, &model](const EpochStats& es) {
    const double v = monitored_value(es, m.monitor);
    const bool better = !std::isnan(v) && (std::isnan(*best) || (maximize ? v > *best : v < *best));
    if (m.save_best_only && !better) return;
    if (better) *best = v;
    if (!writes_files()) return;
    model.save(path);
    write_file_atomic(side, json({{"epoch", es.epoch},
                                  {"monitor", m.monitor},
                                  {"value", std::isfinite(v) ? json(v) : json(nullptr)},
                                  {"best", std::isfinite(*best) ? json(*best) : json(nullptr)}})
                                    .dump(2) +
                                "\n");
    if (better && m.save_best_only)
      log_print("ModelCheckpoint: %s improved to %.4f; weights saved to %s\n", m.monitor.c_str(), v,
                path.c_str());
  };
}

json read_json_file(const std::string& path, uint64_t max_bytes) {
  const std::string text = read_file(path, max_bytes);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    CYCLONE_THROW(path, ": not valid JSON (damaged? delete it or restore it): ", e.what());
  }
}

void write_summary(RunContext& c, RunOutcome& out) {
  scrub(c.summary);
  out.summary_json = c.summary.dump(2) + "\n";
  if (!writes_files()) return;
  write_file_atomic((c.log_dir / "summary.json").string(), out.summary_json);
}

}  // namespace detail

}  // namespace cyclone::train
