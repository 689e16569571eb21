// A multi-phase run (RunSpec::phases, fast.ai's fine-tuning recipe as a config): one model, the
// phases in order, each with a fresh optimizer over the parameters it trains (frozen layer groups
// get no gradient and no optimizer state), per-group rate multipliers, its own policy clock, and
// its logs in log_dir/<phase name>/. An lr_find phase runs a range test whose rate is "finder" in
// the phases after it; a precompute phase trains the head on the frozen body's cached outputs.
//
// Resuming (trainer.resume / --resume): a finished phase left <phase>/phase_done.json and the
// weights it ended with (<phase>/end_model.safetensors) and its random streams' states, so it is
// skipped; the phase that was running continues from its last checkpoint (<phase>/checkpoints);
// an unfinished range test runs again.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cyclone/core/file_util.h"
#include "cyclone/core/progress.h"
#include "cyclone/dist/world.h"
#include "cyclone/train/cli.h"
#include "cyclone/train/distributed.h"
#include "cyclone/train/interrupt.h"
#include "cyclone/train/log.h"
#include "cyclone/train/precompute.h"
#include "cyclone/train/run_detail.h"
#include "cyclone/train/run_plots.h"
#include "cyclone/train/snapshot.h"
#include "cyclone/train/weights.h"

namespace cyclone::train::detail {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The modules to keep in eval mode: the outermost ones whose parameters are all frozen.
std::vector<std::string> frozen_modules(Module& m) {
  std::vector<std::string> out;
  for (auto& [path, mod] : m.named_modules()) {
    if (path.empty()) continue;
    const NamedTensors ps = mod->named_parameters();
    if (ps.empty()) continue;
    bool all_frozen = true;
    for (const auto& [n, t] : ps) all_frozen = all_frozen && !t.requires_grad();
    if (!all_frozen) continue;
    bool inside = false;
    for (const auto& o : out) inside = inside || path.rfind(o + ".", 0) == 0;
    if (!inside) out.push_back(path);
  }
  return out;
}

// The first stage with a trainable parameter: where the frozen body ends.
size_t first_trainable_stage(Module& model, const std::vector<Stage>& stages) {
  for (size_t i = 0; i < stages.size(); ++i)
    for (const auto& name : stages[i].modules)
      if (!model.child(name)->named_parameters(/*trainable_only=*/true).empty()) return i;
  return stages.size();
}

// The prefixes of layer group `name`; a UsageError naming `where` if the model has no such group.
std::vector<std::string> group_prefixes(const RunContext& c, const std::string& name,
                                        const std::string& where) {
  for (const auto& g : c.groups)
    if (g.first == name) return g.second;
  std::string known;
  for (const auto& g : c.groups) known += (known.empty() ? "" : ", ") + g.first;
  throw UsageError(where + ": '" + name + "' is not a layer group of " + c.model_name +
                   " (its groups: " + known + "; network.layer_groups defines others)");
}

// Whether `path` exists, the same answer on every rank of a data-parallel job (a resumed phase
// must be skipped, or continued from its checkpoint, by all of them); an Error naming the file
// when only some ranks see it.
bool exists_on_every_rank(const fs::path& path) {
  std::error_code ec;
  const bool here = fs::exists(path, ec);
  if (num_ranks() == 1) return here;
  std::vector<double> seen = {here ? 1.0 : 0.0};
  all_reduce_sum(seen);
  if (seen[0] != 0 && seen[0] != num_ranks())
    throw Error(path.string() + " is there on " + std::to_string(std::lround(seen[0])) +
                " of the " + std::to_string(num_ranks()) +
                " ranks: a data-parallel run resumes from a model_dir every rank reads (a shared "
                "filesystem)");
  return here;
}

}  // namespace

void check_phase_groups(const RunContext& c) {
  for (size_t i = 0; i < c.spec.phases.size(); ++i) {
    const std::string where = "trainer.phases[" + std::to_string(i) + "]";
    for (const auto& g : c.spec.phases[i].freeze) group_prefixes(c, g, where + ".freeze");
    for (const auto& [g, m] : c.spec.phases[i].lr_mult) group_prefixes(c, g, where + ".lr_mult");
  }
}

RunOutcome run_phases(RunContext& c, Clock::time_point wall0) {
  const RunSpec& spec = c.spec;
  const std::string& prog = spec.program;
  Module& model = *c.model;
  auto group = [&c](const std::string& name, const std::string& where) {
    return group_prefixes(c, name, where);
  };

  std::optional<double> chosen = spec.fixed_lr;
  bool chosen_by_finder = false;  // `chosen` is an lr_find phase's suggestion, not a given rate
  json phases = json::array();
  const bool resuming = !spec.resume.empty();
  RunOutcome out;
  std::string status = "completed";
  // One guard over all the phases: a signal between two phases, or during a phase's last
  // evaluation (which completes that phase), stops the run before the next phase, as a resume
  // expects; each phase's own guard would otherwise clear it when the next one starts.
  InterruptGuard interrupts;
  for (size_t i = 0; i < spec.phases.size(); ++i) {
    const PhaseSpec& ph = spec.phases[i];
    const auto t0 = Clock::now();
    const fs::path dir = c.log_dir / ph.name;
    const fs::path done = dir / "phase_done.json";
    if (resuming && exists_on_every_rank(done)) {
      json pj = detail::read_json_file(done.string(), 1 << 20);
      if (pj.contains("chosen_lr") && pj["chosen_lr"].is_number()) {
        chosen = pj["chosen_lr"].get<double>();
        chosen_by_finder = ph.lr_find;
      }
      model.load((dir / "end_model.safetensors").string());
      // The random streams as the phase left them: the next phase's dropout draws on from there,
      // as it would have without the stop (files written before they were recorded have none).
      if (pj.contains("rng")) {
        std::vector<std::pair<uint64_t, uint64_t>> rng;
        try {
          rng = pj["rng"].get<std::vector<std::pair<uint64_t, uint64_t>>>();
        } catch (const json::exception& e) {
          throw Error(done.string() + ": 'rng' is damaged (" + e.what() +
                      "): remove the phase's folder to run it again");
        }
        set_random_stream_states(model, {c.dropout_gen}, rng, done.string());
      }
      log_print("%s: phase %zu/%zu '%s' was done: skipped (resuming)\n", prog.c_str(), i + 1,
                spec.phases.size(), ph.name.c_str());
      pj["resumed"] = "skipped";
      phases.push_back(pj);
      continue;
    }
    // Marks the phase finished: what later phases and a resumed run need from it (written by
    // rank 0 in a data-parallel job: the ranks hold the same weights and random streams).
    auto finish = [&](json& pj) {
      pj["rng"] = random_stream_states(model, {c.dropout_gen});
      if (writes_files()) {
        model.save((dir / "end_model.safetensors").string());
        write_file_atomic(done.string(), pj.dump(2) + "\n");
      }
      phases.push_back(pj);
    };
    log_print("%s: phase %zu/%zu '%s'%s\n", prog.c_str(), i + 1, spec.phases.size(),
              ph.name.c_str(), ph.lr_find ? " (LR range test)" : "");
    // ---- what this phase trains ----
    std::vector<std::string> frozen;
    for (const auto& g : ph.freeze)
      for (const auto& p : group(g, "")) frozen.push_back(p);
    for (auto& [name, t] : model.named_parameters()) {
      const bool train = !name_under(name, frozen);
      t.set_requires_grad(train);
      if (!train) t.zero_grad(/*set_to_none=*/true);
    }
    json groups = json::array();
    for (const auto& [gname, prefixes] : c.groups) {
      if (std::find(ph.freeze.begin(), ph.freeze.end(), gname) != ph.freeze.end()) continue;
      double mult = 1;
      for (const auto& [g, m] : ph.lr_mult)
        if (g == gname) mult = m;
      groups.push_back({{"name", gname}, {"prefixes", prefixes}, {"lr_mult", mult}});
    }
    const NamedTensors trainable = model.named_parameters(/*trainable_only=*/true);
    if (trainable.empty())
      throw UsageError("trainer.phases[" + std::to_string(i) + "] freezes every layer group");
    auto opt = make_run_optimizer(spec, trainable, groups);
    fs::create_directories(dir);
    json pj = {{"name", ph.name}, {"frozen", ph.freeze}, {"trainable_parameters", 0}};
    int64_t n_trainable = 0;
    for (const auto& [n, t] : trainable) n_trainable += t.numel();
    pj["trainable_parameters"] = n_trainable;

    data::LoaderOptions tl = c.train_options;
    if (ph.augment >= 0) tl.augment = ph.augment ? standard_augment(spec.dataset) : data::Augment{};
    if (ph.lr_find) {
      data::DataLoader train(c.train_set, tl);
      std::unique_ptr<data::DataLoader> val;
      if (c.use_val) val = std::make_unique<data::DataLoader>(c.eval_set, c.eval_options);
      chosen = run_finder(c, model, *opt, train, val.get(), ph.finder, dir, pj);
      chosen_by_finder = true;
      pj["seconds"] = seconds_since(t0);
      finish(pj);
      continue;
    }

    // ---- the data it trains on: images, or the frozen body's outputs ----
    Module* trained = &model;
    std::unique_ptr<StageSlice> head;
    data::Dataset train_set = c.train_set, eval_set = c.eval_set;
    data::LoaderOptions el = c.eval_options;
    if (ph.precompute) {
      const std::vector<Stage> stages = model.stages();
      if (stages.empty())
        throw UsageError("trainer.phases[" + std::to_string(i) + "].precompute: " + c.model_name +
                         " cannot run in stages");
      const size_t cut = first_trainable_stage(model, stages);
      if (cut == 0)
        throw UsageError("trainer.phases[" + std::to_string(i) +
                         "].precompute needs the first layer groups frozen (freeze them)");
      StageSlice body(model, 0, cut);
      head = std::make_unique<StageSlice>(model, cut, stages.size());
      const auto p0 = Clock::now();
      // Over several ranks each runs the body over its share and the outputs are gathered.
      dist::Communicator* ranks = num_ranks() > 1 ? &dist::world().host() : nullptr;
      train_set = precompute_features(body, c.train_set, c.train_options, ranks);
      eval_set = precompute_features(body, c.eval_set, c.eval_options, ranks);
      const double secs = seconds_since(p0);
      const std::string where = keep_features_on_device(train_set, c.device);
      if (where == "GPU memory") keep_features_on_device(eval_set, c.device);
      const double mb = (train_set.images.nbytes() + eval_set.images.nbytes()) / 1048576.0;
      std::string shape;
      for (int64_t k = 1; k < train_set.images.rank(); ++k) {
        if (k > 1) shape += 'x';  // not "x" + std::string: g++ 12's false -Wrestrict
        shape += std::to_string(train_set.images.dim(k));
      }
      log_print(
          "%s: precompute: stages %s..%s ran once over %lld + %lld images%s in %.1f s; the head "
          "(%s..%s) trains on the cached %s outputs (%.0f MB, %s), without "
          "augmentation%s\n",
          prog.c_str(), stages[0].name.c_str(), stages[cut - 1].name.c_str(),
          static_cast<long long>(train_set.size()), static_cast<long long>(eval_set.size()),
          ranks ? (" (split over " + std::to_string(ranks->size()) + " ranks)").c_str() : "", secs,
          stages[cut].name.c_str(), stages.back().name.c_str(), shape.c_str(), mb, where.c_str(),
          ph.augment == 1 ? " (the phase's augment: true does not apply to cached outputs)" : "");
      pj["precompute_seconds"] = secs;
      pj["precompute_mb"] = mb;
      pj["precompute_cache"] = where;
      tl.augment = data::Augment{};
      el.augment = data::Augment{};
      tl.mean.clear();  // the features' own (unused) statistics
      tl.std.clear();
      el.mean.clear();
      el.std.clear();
      trained = head.get();
    }
    data::DataLoader train(train_set, tl);
    data::DataLoader eval(eval_set, el);
    const int64_t steps_per_epoch =
        spec.trainer.limit_train_batches > 0
            ? std::min(train.num_batches(), spec.trainer.limit_train_batches)
            : train.num_batches();
    const std::string policy_text = resolve_policy_json(ph.policy_json, chosen, steps_per_epoch);
    TrainerOptions to = spec.trainer;
    to.epochs = ph.epochs;
    // In a data-parallel job the phase's rates scale with the global batch (the scaling rule)
    // unless they come from an lr_find phase: that range test ran at the global batch.
    apply_lr_scaling(c, to, num_ranks(),
                     chosen_by_finder && uses_finder_rate(ph.policy_json, steps_per_epoch),
                     steps_per_epoch, pj);
    auto policy = make_run_policy(policy_text, steps_per_epoch * ph.epochs, prog, &pj, &to);
    if (spec.plots)
      plot_schedule(*policy, steps_per_epoch * ph.epochs, (dir / "schedule.svg").string(), &to);

    to.num_classes = c.info.num_classes;
    to.eval_split = c.use_val ? "val" : "test";
    to.generators = {c.dropout_gen};
    to.settings = resume_settings(spec);
    to.log_dir = dir.string();
    to.checkpoint_dir = (dir / "checkpoints").string();
    to.resume_hint = "--resume";
    to.eval_modules = frozen_modules(*trained);
    to.phases.clear();
    Trainer trainer(*trained, *opt, *policy, train, &eval, to);
    if (spec.model_checkpoint.enabled)
      trainer.on_epoch_end(model_checkpoint_callback(c, model, resuming));
    json before = nullptr;  // the phase's entry in the interrupted run's summary
    if (resuming && exists_on_every_rank(dir / "checkpoints" / "latest")) {
      log_print("%s: phase '%s' continues from its checkpoint\n", prog.c_str(), ph.name.c_str());
      trainer.resume((dir / "checkpoints").string());
      if (c.previous_summary.is_object() && c.previous_summary["phases"].is_array())
        for (const json& p : c.previous_summary["phases"])
          if (p.is_object() && p.value("name", "") == ph.name) before = p;
    }
    const FitResult fr = trainer.fit();
    pj["status"] = fr.status;
    pj["epochs"] = fr.epochs_run;
    pj["steps"] = fr.steps;
    pj["accuracy"] = fr.final_accuracy >= 0 ? json(fr.final_accuracy) : json(nullptr);
    pj["best_accuracy"] = fr.best_accuracy >= 0 ? json(fr.best_accuracy) : json(nullptr);
    pj["images_per_second"] = fr.images_per_second;
    pj["train_seconds"] = fr.wall_seconds;
    pj["seconds"] = seconds_since(t0);
    // The best over the epochs before the interruption too, as a single run's summary keeps it.
    carry_over_summary(pj, before);
    if (fr.status != "diverged" && fr.status != "interrupted") {
      log_print("%s: phase '%s' done in %s: %s accuracy %.2f%%\n", prog.c_str(), ph.name.c_str(),
                format_duration(pj["seconds"].get<double>()).c_str(),
                c.use_val ? "validation" : "test", 100 * fr.final_accuracy);
      finish(pj);
      if (fr.stop_requested && i + 1 < spec.phases.size()) {
        status = "interrupted";
        log_print(
            "%s: %s during phase '%s''s last evaluation: stopped after it, before phase "
            "'%s' (resume with --resume %s)\n",
            prog.c_str(), interrupt_name(interrupt_signal()), ph.name.c_str(),
            spec.phases[i + 1].name.c_str(), shell_quote(spec.log_dir).c_str());
        break;
      }
    } else {
      phases.push_back(pj);
      status = fr.status;
      // Interrupted (Ctrl-C, SIGTERM) is a clean stop with its checkpoint written: said once.
      if (fr.status == "diverged")
        log_error("%s: phase '%s': %s\n", prog.c_str(), ph.name.c_str(), fr.message.c_str());
      else
        log_print("%s: phase '%s': %s\n", prog.c_str(), ph.name.c_str(), fr.message.c_str());
      out.exit_code = fr.status == "diverged" ? 1 : 0;  // interrupted: checkpoint written
      break;
    }
  }
  for (auto& [name, t] : model.named_parameters()) t.set_requires_grad(true);

  json& summary = c.summary;
  summary["phases"] = phases;
  summary["status"] = status;
  summary["chosen_lr"] = chosen ? json(*chosen) : json(nullptr);
  if (status == "completed") {
    data::DataLoader test(c.test_set, c.eval_options);
    const EvalResult r = evaluate(model, test, c.info.num_classes);
    summary["final_test_accuracy"] = r.top1;
    log_print("%s: all %zu phases done: test loss %.4f  test accuracy %.2f%%\n", prog.c_str(),
              spec.phases.size(), r.loss, 100 * r.top1);
    if (spec.save_model && writes_files()) {
      const std::string path = (c.log_dir / "model.safetensors").string();
      model.save(path);
      summary["model_file"] = path;
    }
  }
  summary["wall_seconds"] = seconds_since(wall0);
  add_total_wall_seconds(summary, c.previous_summary);
  write_summary(c, out);
  out.chosen_lr = chosen.value_or(0);
  if (status == "completed")
    log_print("%s: done in %.1f s; summary, logs and plots in %s\n", prog.c_str(),
              summary["wall_seconds"].get<double>(), spec.log_dir.c_str());
  return out;
}

}  // namespace cyclone::train::detail
