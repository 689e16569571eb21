// The files a run leaves in its log dir (run_detail.h): checked before any work, an earlier run's
// removed before a new one writes, and the log dir itself removed when a run wrote nothing.
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "cyclone/core/file_util.h"
#include "cyclone/train/checkpoint.h"
#include "cyclone/train/distributed.h"
#include "cyclone/train/log.h"
#include "cyclone/train/run_detail.h"

namespace cyclone::train::detail {

namespace fs = std::filesystem;

namespace {

// The files with fixed names a run writes in a log dir (a phase's folder has the same ones), and
// its folders. Weights (model.safetensors, best_model.*) and training.log are not among the files
// an earlier run's are removed from: weights are work, training.log is appended per run.
const std::vector<std::string> kLogFiles = {
    "summary.json",  "history.csv",  "steps.csv",       "lr_finder.csv",
    "lr_finder.svg", "schedule.svg", "phase_done.json", "end_model.safetensors"};
const std::vector<std::string> kWrittenToo = {"training.log",
                                              "model.safetensors",
                                              "best_model.safetensors",
                                              "best_model.json",
                                              "model_checkpoint.safetensors",
                                              "model_checkpoint.json"};

std::string checkpoint_dir(const RunSpec& spec, const fs::path& dir, bool top) {
  return top && !spec.trainer.checkpoint_dir.empty() ? spec.trainer.checkpoint_dir
                                                     : (dir / "checkpoints").string();
}

// The run's log dir and, for a multi-phase run, each phase's folder in it.
std::vector<fs::path> log_dirs(const RunSpec& spec) {
  std::vector<fs::path> dirs = {fs::path(spec.log_dir)};
  for (const PhaseSpec& ph : spec.phases) dirs.push_back(fs::path(spec.log_dir) / ph.name);
  return dirs;
}

std::string log_dir_flag(const RunSpec& spec) {
  return spec.program == "train" ? "trainer.model_dir (--log_dir)" : "--log_dir";
}

// The name `latest` gives in a checkpoint folder ("" when none or unreadable).
std::string latest_name(const fs::path& ckpt) {
  try {
    return latest_checkpoint_name(ckpt.string());
  } catch (const Error&) {
    return "";
  }
}

bool is_checkpoint_entry(const std::string& n) {
  return n == "latest" || n == "interrupted" || n == "snapshots" || n.rfind("epoch-", 0) == 0 ||
         n.rfind("step-", 0) == 0;
}

bool is_finder_file(const std::string& n) {
  return n.rfind("lr_finder", 0) == 0 && (n.ends_with(".csv") || n.ends_with(".svg"));
}

}  // namespace

bool is_run_output_name(const std::string& name) {
  return std::find(kLogFiles.begin(), kLogFiles.end(), name) != kLogFiles.end() ||
         std::find(kWrittenToo.begin(), kWrittenToo.end(), name) != kWrittenToo.end() ||
         name == "checkpoints" || name == "tensorboard_logs";
}

void check_outputs(const RunSpec& spec) {
  if (spec.summary_only || !writes_files()) return;
  const std::string hint = "; remove or rename it, or choose another " + log_dir_flag(spec);
  try {
    for (const fs::path& dir : log_dirs(spec)) {
      const bool top = dir == fs::path(spec.log_dir);
      check_can_make_directories(dir.string());
      for (const auto* names : {&kLogFiles, &kWrittenToo})
        for (const std::string& f : *names) check_can_write_file((dir / f).string());
      check_can_make_directories(checkpoint_dir(spec, dir, top));
      check_can_make_directories((dir / "tensorboard_logs").string());
    }
    if (spec.resume.empty() && spec.finder.enabled && !spec.finder_plot.empty())
      check_can_write_file(finder_plot_path(spec));
  } catch (const Error& e) {
    throw Error(e.message() + hint);
  }
  if (!spec.resume.empty() || spec.finder_only) return;
  // A new run replaces the checkpoints in its folder: not those of a run that did not finish,
  // which the user more likely meant to resume.
  for (const fs::path& dir : log_dirs(spec)) {
    const fs::path ckpt = checkpoint_dir(spec, dir, dir == fs::path(spec.log_dir));
    const std::string latest = latest_name(ckpt);
    if (latest == "interrupted" || latest.rfind("step-", 0) == 0)
      throw UsageError(log_dir_flag(spec) + " " + spec.log_dir +
                       " holds the checkpoint of a run that did not finish (" +
                       (ckpt / latest).string() + "): continue it with --resume " +
                       shell_quote(spec.phases.empty() ? ckpt.string() : spec.log_dir) +
                       ", or remove it (or choose another folder) to start a new run there");
  }
}

std::string finder_plot_path(const RunSpec& spec) {
  if (spec.finder_plot.empty()) return "";
  const fs::path p(spec.finder_plot);
  return p.is_absolute() ? p.string() : (fs::path(spec.log_dir) / p).string();
}

void remove_stale_outputs(const RunSpec& spec) {
  if (!spec.resume.empty() || spec.summary_only || !writes_files()) return;
  std::vector<std::string> removed;
  std::error_code ec;
  auto remove = [&](const fs::path& p, const fs::path& dir) {
    if (fs::remove_all(p, ec) > 0 && !ec) removed.push_back(p.lexically_relative(dir).string());
  };
  const fs::path top(spec.log_dir);
  for (const fs::path& dir : log_dirs(spec)) {
    for (const std::string& f : kLogFiles) remove(dir / f, top);
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (is_finder_file(e.path().filename().string()) && e.is_regular_file(ec))
        remove(e.path(), top);
    for (const auto& e : fs::directory_iterator(dir / "tensorboard_logs", ec))
      if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) remove(e.path(), top);
    if (spec.finder_only) continue;  // it writes no checkpoint: an earlier run's are kept
    const fs::path ckpt = checkpoint_dir(spec, dir, dir == top);
    for (const auto& e : fs::directory_iterator(ckpt, ec))
      if (is_checkpoint_entry(e.path().filename().string())) remove(e.path(), top);
  }
  if (removed.empty()) return;
  std::sort(removed.begin(), removed.end());
  std::string list;
  for (size_t i = 0; i < removed.size() && i < 8; ++i) list += (i ? ", " : "") + removed[i];
  if (removed.size() > 8) list += " and " + std::to_string(removed.size() - 8) + " more";
  log_print("%s: a new run in %s: removed the earlier run's %s (weights and training.log kept)\n",
            spec.program.c_str(), spec.log_dir.c_str(), list.c_str());
}

LogDir::LogDir(const std::string& dir) {
  fs::path p(dir);
  std::error_code ec;
  while (!p.empty() && !fs::exists(p, ec)) {
    created_.push_back(p);
    p = p.parent_path();
  }
  make_directories(dir);
}

LogDir::~LogDir() {
  std::error_code ec;
  for (const fs::path& p : created_)  // innermost first
    if (!fs::is_directory(p, ec) || !fs::is_empty(p, ec) || !fs::remove(p, ec)) return;
}

}  // namespace cyclone::train::detail
