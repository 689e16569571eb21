// What --resume (trainer.resume) names, checked before the data is read, and the summary of a
// resumed run, which goes on from the one the interrupted run wrote.
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cyclone/core/file_util.h"
#include "cyclone/train/checkpoint.h"
#include "cyclone/train/distributed.h"
#include "cyclone/train/run_detail.h"

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

}  // namespace

void check_resume_target(const RunSpec& spec) {
  if (spec.resume.empty()) return;
  const std::string flag = spec.program == "train" ? "--resume (trainer.resume)" : "--resume";
  if (spec.phases.empty()) {
    try {
      (void)resolve_checkpoint(spec.resume);
    } catch (const Error& e) {
      throw UsageError(flag + ": " + e.message());
    }
    return;
  }
  // The phases' state (each finished phase's phase_done.json, the running one's checkpoints) is
  // in the run's own model_dir, under the phase names: another folder cannot be resumed from.
  const fs::path dir(spec.log_dir);
  if (!is_within(spec.resume, dir))
    throw UsageError(flag + " '" + spec.resume +
                     "': a multi-phase run resumes from its own model_dir, " + spec.log_dir +
                     " (its phases' state is there): give --resume " + spec.log_dir +
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
}

json previous_summary(const RunSpec& spec) {
  if (spec.resume.empty() || !writes_files()) return nullptr;
  const fs::path path = fs::path(spec.log_dir) / "summary.json";
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return nullptr;
  try {
    json j = read_json_file(path.string(), 64u << 20);
    return j.is_object() ? j : json(nullptr);
  } catch (const Error&) {  // a damaged summary is replaced, as a fresh run's would be
    return nullptr;
  }
}

void carry_over_summary(json& summary, const json& previous) {
  if (!previous.is_object()) return;
  for (const auto& [key, value] : previous.items()) {
    if (key == "message") continue;  // the earlier run's ending (an interrupt), not this one's
    auto it = summary.find(key);
    if (it == summary.end() || it->is_null() || *it == "") {
      summary[key] = value;  // what only the first run knew: its range test, chosen rate, scores
    } else if (key.rfind("best_", 0) == 0 && it->is_number() && value.is_number()) {
      *it = std::max(it->get<double>(), value.get<double>());  // the best over the whole run
    }
  }
}

}  // namespace cyclone::train::detail
