#include "cyclone/train/run.h"
#include "cyclone/core/progress.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cyclone/core/device.h"
#include "cyclone/core/file_util.h"
#include "cyclone/data/registry.h"
#include "cyclone/models/registry.h"
#include "cyclone/optim/optimizer.h"
#include "cyclone/schedulers/policy.h"
#include "cyclone/train/checkpoint.h"
#include "cyclone/train/cli.h"
#include "cyclone/train/run_plots.h"

namespace cyclone::train {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;

json finder_json(const LrFinderResult& r) {
  return {{"steps", r.stopped_at},
          {"diverged", r.diverged},
          {"skipped", r.skipped},
          {"seconds", r.seconds},
          {"min_loss_lr", r.suggestions.min_loss_lr},
          {"min_loss_lr_div10", r.suggestions.min_loss_lr_div10},
          {"steepest_lr", r.suggestions.steepest_lr},
          {"valley_lr", r.suggestions.valley_lr},
          {"min_loss", r.suggestions.min_loss}};
}

json spread_json(const RepeatedLrFinder::Spread& s) {
  return {{"median", s.median}, {"min", s.min}, {"max", s.max}, {"log10_std", s.log10_std}};
}

json eval_json(const std::optional<EvalResult>& e) {
  if (!e) return nullptr;
  json j = {{"loss", e->loss}, {"accuracy", e->top1}, {"samples", e->samples}};
  if (e->top5 >= 0) j["top5"] = e->top5;
  return j;
}

// JSON has no NaN: non-finite numbers become null so every reader can parse the summary.
void scrub(json& j) {
  if (j.is_number_float() && !std::isfinite(j.get<double>())) j = nullptr;
  if (j.is_structured())
    for (auto& v : j) scrub(v);
}

}  // namespace

RunOutcome run_experiment(const RunSpec& spec) {
  const auto wall0 = Clock::now();
  const std::string& prog = spec.program;
  if (spec.batch_size < 1)
    throw UsageError("batch_size " + std::to_string(spec.batch_size) + " must be >= 1");
  if (spec.trainer.epochs < 1)
    throw UsageError("epochs " + std::to_string(spec.trainer.epochs) + " must be >= 1");
  if (spec.finder.enabled && spec.fixed_lr)
    throw UsageError("a fixed rate and a range test are both set");
  try {
    (void)pick_suggestion(Suggestions{}, spec.finder.suggestion);
  } catch (const Error& e) {
    throw UsageError(e.message());
  }

  // A malformed --device is the user's typo (exit 2); a well-formed one that this machine cannot
  // give (no GPU) is a runtime error (exit 1) from resolve_device.
  const std::string& dv = spec.device;
  const bool well_formed = dv.empty() || dv == "auto" || dv == "cpu" || dv == "cuda" ||
                           (dv.rfind("cuda:", 0) == 0 && dv.size() > 5 && dv.size() < 10 &&
                            dv.find_first_not_of("0123456789", 5) == std::string::npos);
  if (!well_formed) throw UsageError("device '" + dv + "' is not auto, cpu, cuda or cuda:N");
  const Device device = resolve_device(spec.device);
  set_default_device(device);
  manual_seed(spec.seed);

  // ---- data ----
  const data::DatasetInfo& info = [&]() -> const data::DatasetInfo& {
    try {
      return data::dataset_info(spec.dataset);
    } catch (const Error& e) {
      throw UsageError(e.message());
    }
  }();
  const std::string model_name = spec.model.empty() ? default_model_for(spec.dataset) : spec.model;
  ModelOptions mo;
  mo.in_channels = info.channels;
  mo.height = info.height;
  mo.width = info.width;
  mo.num_classes = info.num_classes;
  mo.activation = spec.activation;
  mo.initializer = spec.initializer;
  mo.dropout = spec.dropout;
  mo.seed = spec.seed;
  mo.device = device;
  auto dropout_gen = std::make_shared<Generator>(dropout_seed(spec.seed));
  mo.dropout_generator = dropout_gen;
  std::shared_ptr<Module> model;
  try {
    model = make_model(model_name, mo);
  } catch (const Error& e) {
    // An unknown model, activation or initializer: the user's input.
    throw UsageError("model " + model_name + ": " + e.message());
  }
  if (spec.summary_only) {
    std::printf(
        "%s", summary(*model, Shape({1, info.channels, info.height, info.width}), device).c_str());
    return {};
  }

  data::LoadOptions lo;
  lo.data_dir = spec.data_dir;
  lo.download = spec.download;
  lo.manifest = spec.manifest;
  data::Dataset train_set = data::load_dataset(spec.dataset, "train", lo);
  data::Dataset test_set = data::load_dataset(spec.dataset, "test", lo);
  data::Dataset eval_set = test_set;
  const bool use_val = spec.validation_fraction > 0;
  if (spec.finder.enabled && spec.finder.options.val_every > 0 && !use_val)
    throw UsageError(
        "the range test's held-out loss (lr_finder_val_every / lr_finder.val_every) needs a "
        "held-out split: set validation_fraction (e.g. 0.1); the test set is never used for it");
  if (use_val) {
    data::Split split = data::split_validation(train_set, spec.validation_fraction, spec.seed);
    train_set = std::move(split.train);
    eval_set = std::move(split.validation);
  }
  std::printf("%s: %s on %s (%lld train / %lld %s images), device %s, seed %llu\n", prog.c_str(),
              model_name.c_str(), spec.dataset.c_str(), static_cast<long long>(train_set.size()),
              static_cast<long long>(eval_set.size()), use_val ? "validation" : "test",
              device.str().c_str(), static_cast<unsigned long long>(spec.seed));
  data::LoaderOptions tl;
  tl.batch_size = spec.batch_size;
  tl.shuffle = true;
  const bool augment = spec.augment < 0 ? (spec.dataset == "cifar10" || spec.dataset == "cifar100")
                                        : spec.augment > 0;
  if (augment) tl.augment = data::Augment::cifar();
  tl.workers = spec.workers;
  tl.device = device;
  tl.seed = spec.seed;
  tl.mean = train_set.mean;
  tl.std = train_set.std;
  data::LoaderOptions el = tl;
  el.batch_size = std::max<int64_t>(spec.eval_batch_size, 1);
  el.shuffle = false;
  el.augment = data::Augment{};
  data::DataLoader train_loader(train_set, tl);
  data::DataLoader eval_loader(eval_set, el);
  const int64_t steps_per_epoch =
      spec.trainer.limit_train_batches > 0
          ? std::min(train_loader.num_batches(), spec.trainer.limit_train_batches)
          : train_loader.num_batches();

  // ---- optimizer (the rate is set by the policy every step) ----
  std::unique_ptr<optim::Optimizer> opt;
  try {
    json oj = json::parse(spec.optimizer_json);
    if (!oj.is_object()) throw UsageError("optimizer options must be a JSON object");
    if (!oj.contains("lr")) oj["lr"] = 1e-3;
    opt = optim::make_optimizer(spec.optimizer, model->named_parameters(), oj.dump());
  } catch (const json::exception& e) {
    throw UsageError(std::string("optimizer options: invalid JSON: ") + e.what());
  } catch (const UsageError&) {
    throw;
  } catch (const Error& e) {
    throw UsageError(e.message());
  }

  std::error_code ec;
  fs::create_directories(spec.log_dir, ec);
  if (ec) throw Error("cannot create the log directory '" + spec.log_dir + "': " + ec.message());
  const fs::path log_dir(spec.log_dir);
  json summary = {{"program", prog},
                  {"dataset", spec.dataset},
                  {"model", model_name},
                  {"device", device.str()},
                  {"optimizer", spec.optimizer},
                  {"batch_size", spec.batch_size},
                  {"seed", spec.seed},
                  {"parameters", model->num_parameters()}};

  // ---- the range test, unless resuming (the checkpoint's policy already holds its rate) ----
  std::optional<double> chosen = spec.fixed_lr;
  std::string policy_text;
  if (!spec.resume.empty()) {
    const std::string dir = resolve_checkpoint(spec.resume);
    const json tj = json::parse(read_file((fs::path(dir) / "trainer.json").string(), 64u << 20));
    policy_text = tj.at("policy").dump();
    std::printf("%s: resuming from %s (its policy: %s)\n", prog.c_str(), dir.c_str(),
                policy_text.c_str());
  } else if (spec.finder.enabled) {
    LrFinderOptions fo = spec.finder.options;
    fo.generators = {dropout_gen};
    std::printf("%s: LR range test, %lld steps from %g to %g (%s ramp)\n", prog.c_str(),
                static_cast<long long>(fo.num_steps), fo.start_lr, fo.end_lr,
                fo.exponential ? "exponential" : "linear");
    const RepeatedLrFinder rep = find_lr_repeated(
        *model, *opt, train_loader, fo, spec.finder.repeats, use_val ? &eval_loader : nullptr);
    const LrFinderResult& first = rep.runs.front();
    write_lr_finder_csv(first, (log_dir / "lr_finder.csv").string());
    for (size_t k = 1; k < rep.runs.size(); ++k)
      write_lr_finder_csv(rep.runs[k],
                          (log_dir / ("lr_finder_" + std::to_string(k + 1) + ".csv")).string());
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
          "steps; lower --lr_min (now " +
          format_double("%.4g", fo.start_lr) + ") or check the data");
    chosen = pick_suggestion(s, spec.finder.suggestion);
    std::printf(
        "%s: suggestions  min_loss_lr %.4g  min_loss_lr/10 %.4g  steepest_lr %.4g  "
        "valley_lr %.4g\n",
        prog.c_str(), s.min_loss_lr, s.min_loss_lr_div10, s.steepest_lr, s.valley_lr);
    if (rep.runs.size() > 1)
      for (const char* n : {"min_loss", "steepest", "valley"}) {
        const auto sp = rep.of(n);
        std::printf("%s: %zu runs: %s_lr median %.4g, range [%.4g, %.4g], spread %.2f decades\n",
                    prog.c_str(), rep.runs.size(), n, sp.median, sp.min, sp.max, sp.log10_std);
      }
    std::printf("%s: chosen rate %.4g (the %s suggestion%s)\n", prog.c_str(), *chosen,
                spec.finder.suggestion.c_str(),
                spec.finder.suggestion == "min_loss"
                    ? ", as the original best_lr.py: the edge of stability, which cyclic "
                      "policies cycle up to"
                    : "");
    summary["min_loss_lr"] = s.min_loss_lr;
    summary["min_loss_lr_div10"] = s.min_loss_lr_div10;
    summary["steepest_lr"] = s.steepest_lr;
    summary["valley_lr"] = s.valley_lr;
    summary["suggestion"] = spec.finder.suggestion;
    json runs = json::array();
    for (const auto& r : rep.runs) runs.push_back(finder_json(r));
    summary["lr_finder"] = {{"start_lr", fo.start_lr},
                            {"end_lr", fo.end_lr},
                            {"num_steps", fo.num_steps},
                            {"mode", fo.exponential ? "exponential" : "linear"},
                            {"runs", runs}};
    if (rep.runs.size() > 1)
      summary["lr_finder"]["spread"] = {{"min_loss_lr", spread_json(rep.min_loss_lr)},
                                        {"steepest_lr", spread_json(rep.steepest_lr)},
                                        {"valley_lr", spread_json(rep.valley_lr)},
                                        {"min_loss_lr_div10", spread_json(rep.min_loss_lr_div10)}};
    if (spec.plots) {
      std::vector<const LrFinderResult*> rs;
      for (const auto& r : rep.runs) rs.push_back(&r);
      plot_lr_finder(rs, s, (log_dir / "lr_finder.svg").string(),
                     "LR range test: " + model_name + " on " + spec.dataset);
    }
    for (const auto& [what, values] :
         {std::pair{std::string("momentum"), spec.finder.momentum_test},
          std::pair{std::string("weight_decay"), spec.finder.wd_test}}) {
      if (values.empty()) continue;
      LrFinderOptions so = fo;
      const auto curves =
          sweep_lr(*model, *opt, train_loader, so, what, values, use_val ? &eval_loader : nullptr);
      json arr = json::array();
      for (const auto& c : curves) {
        write_lr_finder_csv(c.result, (log_dir / ("lr_finder_" + what + "_" +
                                                  format_double("%.4g", c.value) + ".csv"))
                                          .string());
        json cj = finder_json(c.result);
        cj[what] = c.value;
        arr.push_back(cj);
      }
      summary["lr_finder_" + what] = arr;
      if (spec.plots)
        plot_lr_sweep(curves, what, (log_dir / ("lr_finder_" + what + ".svg")).string());
    }
  }
  if (policy_text.empty())
    policy_text = resolve_policy_json(spec.policy_json, chosen, steps_per_epoch);
  std::unique_ptr<schedulers::Policy> policy;
  try {
    policy = schedulers::make_policy(policy_text);
  } catch (const Error& e) {
    throw UsageError(e.message());
  }
  const int64_t total_steps = steps_per_epoch * spec.trainer.epochs;
  double lr_lo = INFINITY, lr_hi = 0;
  for (int64_t i = 0; i < std::min<int64_t>(total_steps, 4000); ++i) {
    const int64_t t =
        total_steps > 1
            ? (total_steps - 1) * i / std::max<int64_t>(1, std::min<int64_t>(total_steps, 4000) - 1)
            : 0;
    lr_lo = std::min(lr_lo, policy->lr(t));
    lr_hi = std::max(lr_hi, policy->lr(t));
  }
  std::printf("%s: training %lld epochs x %lld steps with %s, lr in [%.4g, %.4g]\n", prog.c_str(),
              static_cast<long long>(spec.trainer.epochs), static_cast<long long>(steps_per_epoch),
              policy_text.c_str(), lr_lo, lr_hi);
  if (spec.plots) plot_schedule(*policy, total_steps, (log_dir / "schedule.svg").string());
  std::fflush(stdout);

  // ---- training ----
  TrainerOptions to = spec.trainer;
  to.num_classes = info.num_classes;
  to.generators = {dropout_gen};
  if (to.log_dir.empty()) to.log_dir = spec.log_dir;
  if (to.checkpoint_dir.empty()) to.checkpoint_dir = (log_dir / "checkpoints").string();
  Trainer trainer(*model, *opt, *policy, train_loader, &eval_loader, to);
  if (!spec.resume.empty()) trainer.resume(spec.resume);
  const FitResult fr = trainer.fit();

  std::optional<EvalResult> final_test;
  if (use_val && (fr.status == "completed" || fr.status == "early_stopped")) {
    data::DataLoader test_loader(test_set, el);
    final_test = evaluate(*model, test_loader, info.num_classes);
    std::printf("%s: test loss %.4f  test accuracy %.2f%%\n", prog.c_str(), final_test->loss,
                100 * final_test->top1);
  }
  if (spec.save_model && fr.status != "diverged") {
    const std::string path = (log_dir / "model.safetensors").string();
    model->save(path);
    summary["model_file"] = path;
  }

  summary["chosen_lr"] = chosen ? json(*chosen) : json(nullptr);
  summary["train_lr_min"] = lr_lo;
  summary["train_lr_max"] = lr_hi;
  summary["policy"] = json::parse(policy_text);
  summary["status"] = fr.status;
  if (!fr.message.empty()) summary["message"] = fr.message;
  summary["epochs_run"] = fr.epochs_run;
  summary["steps"] = fr.steps;
  summary["skipped_steps"] = fr.skipped_steps;
  const double final_acc = final_test ? final_test->top1 : fr.final_accuracy;
  summary["final_test_accuracy"] = final_acc >= 0 ? json(final_acc) : json(nullptr);
  summary["best_test_accuracy"] = fr.best_accuracy >= 0 ? json(fr.best_accuracy) : json(nullptr);
  if (use_val) summary["best_validation_accuracy"] = summary["best_test_accuracy"];
  if (!fr.history.empty() && fr.history.back().eval && fr.history.back().eval->top5 >= 0)
    summary["final_test_top5"] = fr.history.back().eval->top5;
  summary["images_per_second"] = fr.images_per_second;
  summary["ensemble"] = eval_json(fr.ensemble);
  summary["snapshots"] = fr.snapshots;
  summary["last_checkpoint"] = fr.last_checkpoint;
  summary["wall_seconds"] = std::chrono::duration<double>(Clock::now() - wall0).count();
  scrub(summary);
  RunOutcome out;
  out.summary_json = summary.dump(2) + "\n";
  out.chosen_lr = chosen.value_or(0);
  write_file_atomic((log_dir / "summary.json").string(), out.summary_json);
  if (fr.status == "diverged") {
    std::fprintf(stderr, "%s: %s\n", prog.c_str(), fr.message.c_str());
    out.exit_code = 1;
  } else if (fr.status == "interrupted") {
    std::fprintf(stderr, "%s: %s\n", prog.c_str(), fr.message.c_str());
    out.exit_code = 130;
  } else {
    if (fr.status == "early_stopped") std::printf("%s: %s\n", prog.c_str(), fr.message.c_str());
    std::printf("%s: done in %.1f s; summary, logs and plots in %s\n", prog.c_str(),
                summary["wall_seconds"].get<double>(), spec.log_dir.c_str());
  }
  return out;
}

}  // namespace cyclone::train
