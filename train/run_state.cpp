#include "cyclone/train/run_state.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "cyclone/core/error.h"
#include "cyclone/core/json_depth.h"

namespace cyclone::train {

using json = nlohmann::json;

std::string canonical_json(const std::string& text) { return json::parse(text).dump(); }

std::string run_state_to_json(const RunState& st, const std::string& policy_json, int64_t epochs) {
  json j;
  j["format"] = "cyclone.trainer/1";
  j["epoch"] = st.epoch;
  j["batch"] = st.batch;
  j["step"] = st.step;
  j["skipped"] = st.skipped;
  j["epoch_loss_sum"] = st.epoch_loss_sum;
  j["epoch_acc_sum"] = st.epoch_acc_sum;
  j["epoch_samples"] = st.epoch_samples;
  j["epoch_updates"] = st.epoch_updates;
  j["epoch_train_seconds"] = st.epoch_train_seconds;
  j["train_seconds"] = st.train_seconds;
  j["train_images"] = st.train_images;
  j["best_accuracy"] = std::isfinite(st.best_accuracy) ? json(st.best_accuracy) : json(nullptr);
  j["bad_epochs"] = st.bad_epochs;
  j["plateau"] = st.plateau ? json::parse(st.plateau->to_json()) : json();
  j["snapshots"] = st.snapshots;
  json rng = json::array();
  for (const auto& [seed, offset] : st.rngs) rng.push_back({{"seed", seed}, {"offset", offset}});
  j["rng"] = rng;
  j["policy"] = json::parse(policy_json);
  j["epochs"] = epochs;
  if (st.batches_per_epoch > 0) j["batches_per_epoch"] = st.batches_per_epoch;
  if (st.ranks > 0) j["ranks"] = st.ranks;
  if (!st.settings.empty()) j["settings"] = json::parse(st.settings);
  if (st.loss_scale > 0) {
    j["loss_scale"] = st.loss_scale;
    j["loss_scale_good_steps"] = st.loss_scale_good_steps;
  }
  return j.dump(2);
}

RunState run_state_from_json(const std::string& text, const std::string& origin) {
  RunState s;
  // Whole numbers only: nlohmann's get<int64_t>() would cast a float, past int64's range too.
  // A key missing or of the wrong type is named (nlohmann's own text names neither file nor fix).
  auto at = [&](const json& j, const char* key) -> const json& {
    CYCLONE_CHECK(j.is_object() && j.contains(key), origin, ": the key '", key,
                  "' is missing: the checkpoint is damaged (resume from another one, or start a "
                  "new run)");
    return j.at(key);
  };
  auto number = [&](const json& j, const char* key) -> double {
    const json& v = at(j, key);
    CYCLONE_CHECK(v.is_number(), origin, ": '", key, "' must be a number, got ",
                  v.dump().substr(0, 40));
    return v.get<double>();
  };
  auto unsigned_at = [&](const json& j, const char* key) -> uint64_t {
    const json& v = at(j, key);
    CYCLONE_CHECK(v.is_number_unsigned(), origin, ": '", key, "' must be a whole number >= 0, got ",
                  v.dump().substr(0, 40));
    return v.get<uint64_t>();
  };
  auto count = [&](const json& j, const char* key) -> int64_t {
    const uint64_t v = unsigned_at(j, key);
    CYCLONE_CHECK(v <= static_cast<uint64_t>(INT64_MAX), origin, ": '", key, "' is too large: ", v);
    return static_cast<int64_t>(v);
  };
  try {
    // Bounded nesting: the policy and plateau are dumped below, recursively.
    const json j = json::parse(text, json_depth_limit<json>(origin));
    CYCLONE_CHECK(j.value("format", "") == "cyclone.trainer/1", origin, ": format '",
                  j.value("format", ""), "', expected 'cyclone.trainer/1'");
    s.epoch = count(j, "epoch");
    s.batch = count(j, "batch");
    s.step = count(j, "step");
    s.skipped = count(j, "skipped");
    s.epoch_loss_sum = number(j, "epoch_loss_sum");
    s.epoch_acc_sum = number(j, "epoch_acc_sum");
    s.epoch_samples = count(j, "epoch_samples");
    s.epoch_updates = count(j, "epoch_updates");
    s.epoch_train_seconds = number(j, "epoch_train_seconds");
    s.train_seconds = number(j, "train_seconds");
    s.train_images = count(j, "train_images");
    s.best_accuracy = at(j, "best_accuracy").is_null() ? std::numeric_limits<double>::quiet_NaN()
                                                       : number(j, "best_accuracy");
    s.bad_epochs = count(j, "bad_epochs");
    if (!at(j, "plateau").is_null())
      s.plateau = schedulers::PlateauState::from_json(j.at("plateau").dump());
    s.snapshots = at(j, "snapshots").get<std::vector<std::string>>();
    for (const json& r : at(j, "rng"))
      s.rngs.emplace_back(unsigned_at(r, "seed"), unsigned_at(r, "offset"));
    s.policy = at(j, "policy").dump();
    if (j.contains("batches_per_epoch")) {
      s.batches_per_epoch = count(j, "batches_per_epoch");
      CYCLONE_CHECK(s.batches_per_epoch > 0, origin, ": 'batches_per_epoch' must be >= 1, got 0");
    }
    if (j.contains("ranks")) s.ranks = count(j, "ranks");
    if (j.contains("settings") && j.at("settings").is_object())
      s.settings = j.at("settings").dump();
    if (j.contains("loss_scale")) {
      s.loss_scale = number(j, "loss_scale");
      s.loss_scale_good_steps = number(j, "loss_scale_good_steps");
      CYCLONE_CHECK(std::isfinite(s.loss_scale) && s.loss_scale > 0 && s.loss_scale_good_steps >= 0,
                    origin, ": loss_scale ", s.loss_scale, " must be finite and > 0 (good steps ",
                    s.loss_scale_good_steps, " >= 0)");
    }
  } catch (const json::exception& e) {
    CYCLONE_THROW(origin, ": malformed trainer state: ", e.what());
  }
  CYCLONE_CHECK(s.epoch >= 0 && s.batch >= 0 && s.step >= 0 && s.epoch_samples >= 0, origin,
                ": negative epoch, batch, step or sample count");
  // A position the run cannot have been at (an edited or damaged file), said now rather than
  // after the data is loaded. batches_per_epoch is recorded only when known (> 0).
  CYCLONE_CHECK(s.batches_per_epoch == 0 || s.batch <= s.batches_per_epoch, origin, ": batch ",
                s.batch, " is past the epoch's ", s.batches_per_epoch, " batches");
  return s;
}

}  // namespace cyclone::train
