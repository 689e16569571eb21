// Internal to run.cpp and run_phases.cpp (not a public header: it brings nlohmann/json): what a
// run has set up before it trains, and the steps both kinds of run share.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cyclone/data/loader.h"
#include "cyclone/data/registry.h"
#include "cyclone/optim/optimizer.h"
#include "cyclone/train/lr_finder.h"
#include "cyclone/train/run.h"

namespace cyclone::train::detail {

struct RunContext {
  const RunSpec& spec;
  Device device = {};
  const data::DatasetInfo& info;
  std::string model_name = {};
  std::shared_ptr<Module> model = {};
  std::shared_ptr<Generator> dropout_gen = {};
  data::Dataset train_set = {}, eval_set = {}, test_set = {};
  bool use_val = false;
  int64_t eval_set_full_size = 0;  // before limit_eval_batches cut the eval set
  data::LoaderOptions train_options = {}, eval_options = {};
  std::filesystem::path log_dir = {};
  LayerGroups groups = {};
  nlohmann::json summary = nlohmann::json::object();
  // The summary.json of the run a --resume goes on from (previous_summary(spec)), null otherwise.
  nlohmann::json previous_summary = nullptr;
  // ModelCheckpoint's best monitored value so far, one for the whole run: a later phase saves only
  // what beats the earlier phases' best (model_checkpoint_callback; NaN: none yet).
  std::shared_ptr<double> checkpoint_best = {};
};

// How messages name what the user gave: "F: " before a config key of a run from config file F
// ("" from best_lr's flags), and the resume input ("--resume (trainer.resume)" for train).
inline std::string origin_prefix(const RunSpec& spec) {
  return spec.origin.empty() ? "" : spec.origin + ": ";
}
inline std::string resume_flag(const RunSpec& spec) {
  return spec.program == "train" ? "--resume (trainer.resume)" : "--resume";
}

// The first batches x batch_size images of `d`, in order (limit_eval_batches: the same images on
// any number of ranks); all of `d` when that is as many or more, or batches <= 0.
data::Dataset first_batches(const data::Dataset& d, int64_t batches, int64_t batch_size);

// What augment: true means for `dataset` (run.cpp says why).
data::Augment standard_augment(const std::string& dataset);

// An optimizer over `params` from the spec's name and options, extra groups added; option errors
// are UsageErrors.
std::unique_ptr<optim::Optimizer> make_run_optimizer(const RunSpec& spec, NamedTensors params,
                                                     const nlohmann::json& groups = nullptr);

// The range test (repeats, sweeps; its CSVs and plots in `dir`), its results added to `out`;
// returns the chosen rate. Throws when no rate was found.
double run_finder(RunContext& c, Module& model, optim::Optimizer& opt, data::DataLoader& train,
                  data::DataLoader* val, const FinderSpec& finder, const std::filesystem::path& dir,
                  nlohmann::json& out, const std::string& plot_path = "");

// run_resume.cpp. A --resume (trainer.resume) that names no checkpoint, or, for a multi-phase
// run, a folder other than the run's model_dir or one holding none of its phases, is a UsageError
// before any data is read.
// A checkpoint of another run (other settings than resume_settings(spec)) is refused too, naming
// what differs; so is one past the epochs asked for. A damaged one (a file missing, trainer.json
// unreadable) is an Error naming the file. Returns false, after saying so, when the checkpoint
// already is at the last epoch asked for: nothing is left to train.
[[nodiscard]] bool check_resume_target(const RunSpec& spec);
// The settings a resume must keep (rank_fingerprint's, a JSON object), less those it may change:
// the epochs (to train longer), where it runs (device, precision, layout) and how (sync_every,
// CUDA graphs), the evaluation batch, checkpoint frequency, early stopping's patience, the
// starting weights (the checkpoint's replace them) and the range test's options (it does not run
// again: its rate is in the checkpoint's policy).
std::string resume_settings(const RunSpec& spec);
// The summary.json of the run a resume goes on from (null when none, or not resuming): the one
// next to the checkpoint's checkpoints/ folder, else the one in the resumed run's folder; and
// the summary of the resumed run completed from it: fields this run could not know (the range
// test, the chosen rate, scores when no epoch was left to train) are carried over, best_* are the
// best of both.
nlohmann::json previous_summary(const RunSpec& spec);
void carry_over_summary(nlohmann::json& summary, const nlohmann::json& previous);
// wall_seconds is this run's time; total_wall_seconds adds the earlier runs' a resumed run goes on
// from (their summary's total_wall_seconds, or wall_seconds); absent when there is none.
void add_total_wall_seconds(nlohmann::json& summary, const nlohmann::json& previous);

// run_outputs.cpp. check_outputs: before any work, an Error naming the path (and what to do) when
// the log dir, a phase's folder, the checkpoint or TensorBoard folder cannot be created or a file
// a run writes there is a directory; a UsageError when a new run (no --resume) would replace the
// checkpoint of a run that did not finish. remove_stale_outputs: a new run (no --resume) first
// removes what an earlier run left in its folders under the names runs write (summary, CSV logs,
// plots, range-test files, TensorBoard event files, and checkpoints when it writes its own; never
// weights, training.log or other files), saying what in one line.
void check_outputs(const RunSpec& spec);
// Whether a file or folder of that name in a log dir is one a run writes itself under a fixed name
// (summary.json, training.log, lr_finder.csv, checkpoints, ...): a phase's folder or a named plot
// must not take such a name.
bool is_run_output_name(const std::string& name);
// Where the range-test plot a run asks for by name goes (--finder_plot, microDL's fig_fname): as
// given when absolute, else in the log dir; "" when none is named (lr_finder.svg then).
std::string finder_plot_path(const RunSpec& spec);
void remove_stale_outputs(const RunSpec& spec);
// The log dir, created with its missing parents; those it created are removed again on
// destruction when empty (a run that failed before writing anything, or --summary).
class LogDir {
 public:
  explicit LogDir(const std::string& dir);
  ~LogDir();
  LogDir(const LogDir&) = delete;
  LogDir& operator=(const LogDir&) = delete;

 private:
  std::vector<std::filesystem::path> created_;  // innermost first
};

// Throws UsageError, naming best_lr's flags for best_lr, when the training policy cannot run over
// epochs x steps_per_epoch steps (one_cycle's warm-up needs a few) or that count overflows: checked
// once the dataset is open, before the range test spends its time and writes its files.
void check_policy_fits(const RunSpec& spec, int64_t steps_per_epoch);

// Throws UsageError (prefixed with `context` when not empty) unless the policy `policy_json` builds
// over `steps_per_epoch`-step epochs with its "finder" rates at `rate`, or, with no rate, at some
// rate the range test `finder` can suggest (null: none runs before it, so "finder" is an error).
// Without its rate a policy is refused only where every rate from the test's sweep would be:
// `base_lr: "finder/10", max_lr: 0.05` fits a suggestion below 0.5.
// A warning line when `chosen` is the first rate of range test `r` (its loss only rose) or the last
// of a test that never diverged (still falling), naming the setting to change; "" otherwise.
std::string sweep_edge_warning(const RunSpec& spec, const LrFinderResult& r, double chosen);

void check_policy_builds(const std::string& policy_json, std::optional<double> rate,
                         const FinderSpec* finder, int64_t steps_per_epoch,
                         const std::string& context);
// check_policy_builds for every training phase's policy: at `rate` until the first lr_find phase,
// then at what that range test can suggest; errors name trainer.phases[i].policy (after `origin`).
void check_phase_policies(const RunSpec& spec, std::optional<double> rate, int64_t steps_per_epoch,
                          const std::string& origin);

// Makes the epochs-based policy concrete and prints its range (the rates the trainer uses:
// with `scaling`'s lr_scale and warmup); throws UsageError on bad policies.
std::unique_ptr<schedulers::Policy> make_run_policy(const std::string& policy_text,
                                                    int64_t total_steps, const std::string& prog,
                                                    nlohmann::json* summary_out,
                                                    const TrainerOptions* scaling = nullptr);

// A resumed run's policy comes from its checkpoint's trainer.json: one that does not build is a
// damaged checkpoint (a runtime Error naming `trainer_json_path`), not a usage error.
void check_checkpoint_policy(const std::string& trainer_json_path, const std::string& policy_text);

// Early stopping or ModelCheckpoint's best-only choice on a val_* score needs a validation split:
// without one it is a UsageError (before any work), rather than choosing by the test set.
void check_monitors_have_a_split(const RunSpec& spec);

// ModelCheckpoint (Keras): an on_epoch_end callback saving the weights of `model` to log_dir.
std::function<void(const EpochStats&)> model_checkpoint_callback(RunContext& c, Module& model,
                                                                 bool resuming);

// A multi-phase run (spec.phases): run_phases.cpp. check_phase_groups refuses a phase's freeze or
// lr_mult naming a group c.groups lacks (a UsageError, before the data is loaded).
void check_phase_groups(const RunContext& c);
RunOutcome run_phases(RunContext& c, std::chrono::steady_clock::time_point wall0);

// What every rank of a data-parallel job must agree on (dist::World::check_same), as JSON
// objects: the settings that shape the steps (checked before any work), then the data's sizes
// and the model's parameters (once the data is loaded).
std::string rank_fingerprint(const RunSpec& spec, Device device);
std::string data_fingerprint(const RunContext& c, Module& model);

// Sets options.lr_scale / lr_scale_warmup_steps from spec.lr_scaling and lr_warmup_epochs for a
// job of `ranks` (run.h says the rule); a rate found by the range test (`rate_from_finder`) is not
// scaled. Prints what it chose and records it in `record` (the summary, or a phase's entry). The
// default warmup depends on the run's length; a resumed run whose `previous` record (the run it
// goes on from) holds lr_scale_warmup_steps keeps that count, so a changed epoch count does not
// restart or stretch the ramp.
void apply_lr_scaling(RunContext& c, TrainerOptions& options, int ranks, bool rate_from_finder,
                      int64_t steps_per_epoch, nlohmann::json& record,
                      const nlohmann::json* previous = nullptr);
// Whether the policy's rates come from the range test (it names "finder" in a rate).
bool uses_finder_rate(const std::string& policy_json, int64_t steps_per_epoch);

// summary.json written atomically; NaNs as null.
void write_summary(RunContext& c, RunOutcome& out);

// A JSON file the run itself wrote (trainer.json, phase_done.json) and a crash or a person may have
// damaged: an Error naming the file when it is unreadable, larger than max_bytes or not JSON.
nlohmann::json read_json_file(const std::string& path, uint64_t max_bytes);

}  // namespace cyclone::train::detail
