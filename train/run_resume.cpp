// What --resume (trainer.resume) names, checked before the data is read, and the summary of a
// resumed run, which goes on from the one the interrupted run wrote.
#include <algorithm>
#include <filesystem>
#include <iterator>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "cyclone/core/file_util.h"
#include "cyclone/core/progress.h"
#include "cyclone/train/checkpoint.h"
#include "cyclone/train/distributed.h"
#include "cyclone/train/log.h"
#include "cyclone/train/run_detail.h"
#include "cyclone/train/run_state.h"

namespace cyclone::train::detail {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// `p` is `dir` or lies under it (both made absolute and normal, links left as written).
bool is_within(const fs::path& p, const fs::path& dir) {
  std::error_code ec;
  const fs::path a = fs::absolute(p, ec).lexically_normal();
  const fs::path d = fs::absolute(dir, ec).lexically_normal();
  const fs::path rel = a.lexically_relative(d);
  return !rel.empty() && *rel.begin() != "..";
}

// The best_lr flag that sets resume setting `key` (resume_settings' names are the config's).
std::string best_lr_flag(const std::string& key) {
  static const std::vector<std::pair<std::string, std::string>> flags = {
      {"fixed_lr", "--skip_test"},
      {"policy.policy", "--cycle / --policy"},
      {"policy.total_epochs", "--num_epochs"},
      {"policy.step_size_epochs", "--step_size_epochs"},
      {"policy.cycle_len_epochs", "--step_size_epochs"},
      {"policy.gamma", "--gamma"},
      {"policy.max_lr", "--lr_max_multiplier"},  // run_spec.cpp: finder * multiplier
      {"policy.lr", "--lr_max_multiplier"},
      {"policy.base_lr", "--lr_min_multiplier"},
      {"policy.min_lr", "--lr_min_multiplier"},
      {"policy.max_momentum", "--momentum"},
      {"policy.base_momentum", "--momentum"},
      {"optimizer.beta1", "--momentum"}};
  for (const auto& [k, flag] : flags)
    if (k == key) return flag;
  if (key.rfind("policy.", 0) == 0) return "--lr_min_multiplier / --lr_max_multiplier";
  const size_t dot = key.find('.');  // optimizer.weight_decay, trainer.clip_grad_norm
  return "--" + (dot == std::string::npos ? key : key.substr(dot + 1));
}

// Refuses the checkpoint `dir` when its trainer.json records other settings than `mine`.
void check_same_settings(const std::string& dir, const std::string& mine, const std::string& flag,
                         bool best_lr) {
  const fs::path path = fs::path(dir) / "trainer.json";
  json theirs;
  try {
    theirs = read_json_file(path.string(), 64u << 20);
  } catch (const Error&) {
    return;  // damaged: the resume itself says so, naming the file
  }
  if (!theirs.is_object() || !theirs.contains("settings") || !theirs["settings"].is_object())
    return;  // written before settings were recorded
  const json& was = theirs["settings"];
  const json now = json::parse(mine);
  std::string diff;
  int shown = 0, differ = 0;
  bool cycle_epochs = false;  // one_cycle's total_epochs: the run's epochs, which may not change
  auto add = [&](const std::string& key, const json& a, const json& b) {
    cycle_epochs = cycle_epochs || key == "policy.total_epochs";
    if (++differ > 4) return;
    diff += (shown++ ? "; " : "") + (best_lr ? best_lr_flag(key) : key) + " " +
            (a.is_null() ? "unset" : a.dump()) + " (now " + (b.is_null() ? "unset" : b.dump()) +
            ")";
  };
  // Another policy brings other option keys (triangular2's base_lr and step_size_epochs, sgdr's
  // min_lr and cycle_len_epochs): the policy's name is the one difference to name then.
  auto value_of = [](const json& j, const std::string& key) {
    return j.contains(key) ? j.at(key) : json(nullptr);
  };
  const bool other_policy = value_of(was, "policy.policy") != value_of(now, "policy.policy");
  auto follows_policy = [&](const std::string& key) {
    return other_policy && key.rfind("policy.", 0) == 0 && key != "policy.policy";
  };
  for (const auto& [key, value] : was.items()) {
    const json other = value_of(now, key);
    if (other != value && !follows_policy(key)) add(key, value, other);
  }
  for (const auto& [key, value] : now.items())
    if (!was.contains(key) && !follows_policy(key)) add(key, nullptr, value);
  if (differ == 0) return;
  const std::string epochs = best_lr ? "--num_epochs" : "trainer.max_epochs";
  const std::string may = best_lr ? epochs + ", --device, --precision and --checkpoint_every"
                                  : epochs + ", the device, precision and checkpoint frequency";
  throw UsageError(flag + ": the checkpoint " + dir + " was trained with other settings: " + diff +
                   (differ > 4 ? " and " + std::to_string(differ - 4) + " more" : "") +
                   (cycle_epochs ? " (one_cycle's cycle spans the whole run: its " + epochs +
                                       " cannot change on a resume)"
                                 : "") +
                   ": resume without changing them (" + may + " may change" +
                   (cycle_epochs ? ", the epochs except under one_cycle" : "") +
                   "), or start a new run");
}

}  // namespace

std::string resume_settings(const RunSpec& spec) {
  json j = json::parse(rank_fingerprint(spec, Device::cpu()));
  for (const char* key :
       {"resume", "trainer.epochs", "device_type", "precision", "channels_last", "eval_batch_size",
        "trainer.sync_every", "trainer.cuda_graph", "lr_finder.sync_every", "lr_finder.cuda_graph",
        "trainer.checkpoint_every", "trainer.checkpoint_every_steps", "trainer.early_stop_patience",
        "trainer.early_stop_min_delta", "model_fname", "partial", "new_head"})
    j.erase(key);
  // A resume does not run the range test again (its rate is in the checkpoint's policy); the
  // phases' own settings are for the ranks' check only (checkpoints before them have none).
  for (auto it = j.begin(); it != j.end();)
    it = it.key().rfind("lr_finder.", 0) == 0 || it.key().rfind("phases[", 0) == 0 ? j.erase(it)
                                                                                   : std::next(it);
  // The optimizer's and the policy's options one by one, so that a refusal names the option.
  for (const auto& [key, prefix] :
       {std::pair{"optimizer_options", "optimizer."}, std::pair{"policy", "policy."}}) {
    if (!j.contains(key) || !j[key].is_string()) continue;
    const json inner = json::parse(j[key].get<std::string>(), nullptr, /*allow_exceptions=*/false);
    if (!inner.is_object()) continue;
    j.erase(key);
    for (const auto& [k, v] : inner.items()) j[prefix + k] = v;
  }
  return j.dump();
}

bool check_resume_target(const RunSpec& spec) {
  if (spec.resume.empty()) return true;
  const bool best_lr = spec.program == "best_lr";
  const std::string flag = resume_flag(spec);
  const std::string mine = resume_settings(spec);
  if (spec.phases.empty()) {
    std::string dir;
    try {
      dir = resolve_checkpoint(spec.resume);
    } catch (const Error& e) {
      throw UsageError(flag + ": " + e.message());
    }
    // Damaged (a file missing, trainer.json unreadable): an Error naming the file, before any work.
    check_checkpoint_files(dir);
    const std::string tpath = (fs::path(dir) / "trainer.json").string();
    RunState st;
    try {
      st = run_state_from_json(read_file(tpath, 64u << 20), tpath);
    } catch (const Error& e) {
      throw_damaged_checkpoint(dir, e.message());
    }
    const int64_t epochs = spec.trainer.epochs;
    const std::string epochs_flag = best_lr ? "--num_epochs" : "trainer.max_epochs (--epochs)";
    const std::string at = "the checkpoint " + dir + " is at epoch " + std::to_string(st.epoch) +
                           (st.batch > 0 ? " and " + std::to_string(st.batch) +
                                               " batches into epoch " + std::to_string(st.epoch + 1)
                                         : "");
    if (st.epoch > epochs || (st.epoch == epochs && st.batch > 0))
      // st.epoch + 1: the epoch under way finished, or (at an epoch's end) one more trained;
      // exactly st.epoch at an epoch's end would be accepted but train nothing.
      throw UsageError(flag + ": " + at + ", past " + epochs_flag + " " + std::to_string(epochs) +
                       ": give " + epochs_flag + " " + std::to_string(st.epoch + 1) +
                       " or more to train on, or start a new run without " + flag);
    check_same_settings(dir, mine, flag, best_lr);
    if (st.epoch == epochs) {
      log_print("%s: %s of %lld: nothing to train (give a larger %s to train longer)\n",
                spec.program.c_str(), at.c_str(), static_cast<long long>(epochs),
                epochs_flag.c_str());
      return false;
    }
    // A checkpoint written by early stopping (its count of epochs without improvement reached the
    // patience) is as finished as one at the last epoch: resuming it would train on and stop again
    // a patience later, replacing the run's weights and logs each time.
    const int64_t patience = spec.trainer.early_stop_patience;
    if (patience > 0 && st.bad_epochs >= patience && st.batch == 0) {
      const std::string patience_flag =
          best_lr ? "--early_stop_patience"
                  : "EarlyStopping.patience (trainer.early_stop_patience)";
      log_print(
          "%s: the run stopped early at epoch %lld (no better %s for %s): nothing to "
          "train (give a larger %s to train on)\n",
          spec.program.c_str(), static_cast<long long>(st.epoch),
          spec.trainer.early_stop_monitor.c_str(), count_noun(st.bad_epochs, "epoch").c_str(),
          patience_flag.c_str());
      return false;
    }
    return true;
  }
  // The phases' state (each finished phase's phase_done.json, the running one's checkpoints) is
  // in the run's own model_dir, under the phase names: another folder cannot be resumed from.
  const fs::path dir(spec.log_dir);
  if (!is_within(spec.resume, dir))
    throw UsageError(flag + " '" + spec.resume +
                     "': a multi-phase run resumes from its own model_dir, " + spec.log_dir +
                     " (its phases' state is there): give --resume " + shell_quote(spec.log_dir) +
                     " or trainer.resume: true, or set model_dir / --log_dir to the run to resume");
  std::error_code ec;
  const bool any = std::any_of(spec.phases.begin(), spec.phases.end(), [&](const PhaseSpec& ph) {
    return fs::exists(dir / ph.name / "phase_done.json", ec) ||
           fs::exists(dir / ph.name / "checkpoints" / "latest", ec);
  });
  if (!any)
    throw UsageError(flag + ": " + spec.log_dir +
                     " holds no phase of this run to resume (no <phase>/phase_done.json or "
                     "<phase>/checkpoints/latest for its phase names): run without it to start");
  for (const PhaseSpec& ph : spec.phases) {  // the phase that was running
    const fs::path ckpt = dir / ph.name / "checkpoints";
    if (!fs::exists(dir / ph.name / "phase_done.json", ec) && fs::exists(ckpt / "latest", ec)) {
      try {
        check_same_settings(resolve_checkpoint(ckpt.string()), mine, flag, best_lr);
      } catch (const UsageError&) {
        throw;
      } catch (const Error&) {  // damaged: the phase's resume says so, naming the file
      }
    }
  }
  return true;
}

json previous_summary(const RunSpec& spec) {
  if (spec.resume.empty() || !writes_files()) return nullptr;
  // The run that wrote the checkpoint: <run>/checkpoints/<name> (a run resumed into another
  // folder keeps its range test and chosen rate); else the summary in this run's folder.
  std::vector<fs::path> candidates;
  if (spec.phases.empty()) {
    try {
      fs::path ckpt = fs::path(resolve_checkpoint(spec.resume)).lexically_normal();
      if (ckpt.filename().empty()) ckpt = ckpt.parent_path();  // given as "epoch-0003/"
      if (ckpt.parent_path().filename() == "checkpoints")
        candidates.push_back(ckpt.parent_path().parent_path() / "summary.json");
    } catch (const Error&) {  // check_resume_target has said what is wrong with it
    }
  }
  candidates.push_back(fs::path(spec.log_dir) / "summary.json");
  for (const fs::path& path : candidates) {
    try {
      json j = read_json_file(path.string(), 64u << 20);
      if (j.is_object()) return j;
    } catch (const Error&) {  // none there, or damaged: replaced, as a fresh run's would be
    }
  }
  return nullptr;
}

void carry_over_summary(json& summary, const json& previous) {
  if (!previous.is_object()) return;
  for (const auto& [key, value] : previous.items()) {
    // The earlier run's ending (its message, final scores, final weights, ensemble score), not
    // this one's: a resumed run that was interrupted in turn has none of its own, and reporting
    // the earlier run's would describe weights this run no longer has.
    if (key == "message" || key == "model_file" || key == "ensemble" || key.rfind("final_", 0) == 0)
      continue;
    auto it = summary.find(key);
    if (it == summary.end() || it->is_null() || *it == "") {
      summary[key] = value;  // what only the first run knew: its range test, chosen rate, scores
    } else if (key.rfind("best_", 0) == 0 && it->is_number() && value.is_number()) {
      *it = std::max(it->get<double>(), value.get<double>());  // the best over the whole run
    }
  }
}

void add_total_wall_seconds(json& summary, const json& previous) {
  if (!previous.is_object()) return;
  for (const char* key : {"total_wall_seconds", "wall_seconds"}) {
    if (previous.contains(key) && previous[key].is_number()) {
      summary["total_wall_seconds"] =
          summary["wall_seconds"].get<double>() + previous[key].get<double>();
      return;
    }
  }
}

}  // namespace cyclone::train::detail
