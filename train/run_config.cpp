#include "cyclone/train/run_config.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "cyclone/core/file_util.h"
#include "cyclone/train/cli.h"

namespace cyclone::train {

using json = nlohmann::json;

namespace {

// Reads the fields of one JSON object, remembering which were read, so that a key nobody asked
// for is an error naming it.
class Section {
 public:
  Section(const json& j, std::string path, std::string origin)
      : j_(j), path_(std::move(path)), origin_(std::move(origin)) {
    if (!j_.is_object()) fail(path_.empty() ? "the config" : path_, "must be a JSON object");
  }
  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw UsageError(origin_ + ": " + key + " " + what);
  }
  std::string key(const std::string& k) const { return path_.empty() ? k : path_ + "." + k; }
  bool has(const std::string& k) {
    used_.insert(k);
    return j_.contains(k);
  }
  const json& at(const std::string& k) {
    used_.insert(k);
    return j_.at(k);
  }
  std::string str(const std::string& k, const std::string& fallback, bool required = false) {
    if (!has(k)) {
      if (required) fail(key(k), "is required");
      return fallback;
    }
    if (!at(k).is_string()) fail(key(k), "must be a string, got " + at(k).dump());
    return at(k).get<std::string>();
  }
  double num(const std::string& k, double fallback, double lo = -INFINITY, double hi = INFINITY) {
    if (!has(k)) return fallback;
    if (!at(k).is_number()) fail(key(k), "must be a number, got " + at(k).dump());
    const double v = at(k).get<double>();
    if (!(v >= lo && v <= hi))
      fail(key(k), "= " + at(k).dump() + " is outside [" + format_number(lo) + ", " +
                       format_number(hi) + "]");
    return v;
  }
  int64_t integer(const std::string& k, int64_t fallback, int64_t lo = INT64_MIN) {
    if (!has(k)) return fallback;
    const json& v = at(k);
    if (!v.is_number_integer() &&
        !(v.is_number() && std::floor(v.get<double>()) == v.get<double>()))
      fail(key(k), "must be an integer, got " + v.dump());
    const int64_t x =
        v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(v.get<double>());
    if (x < lo) fail(key(k), "= " + std::to_string(x) + " must be >= " + std::to_string(lo));
    return x;
  }
  bool boolean(const std::string& k, bool fallback) {
    if (!has(k)) return fallback;
    if (!at(k).is_boolean()) fail(key(k), "must be true or false, got " + at(k).dump());
    return at(k).get<bool>();
  }
  std::vector<double> numbers(const std::string& k) {
    if (!has(k)) return {};
    if (!at(k).is_array()) fail(key(k), "must be a list of numbers");
    std::vector<double> out;
    for (const json& e : at(k)) {
      if (!e.is_number()) fail(key(k), "must be a list of numbers, got " + e.dump());
      out.push_back(e.get<double>());
    }
    return out;
  }
  std::vector<std::string> strings(const std::string& k) {
    if (!has(k)) return {};
    if (!at(k).is_array()) fail(key(k), "must be a list of strings");
    std::vector<std::string> out;
    for (const json& e : at(k)) {
      if (!e.is_string()) fail(key(k), "must be a list of strings, got " + e.dump());
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  void check_all_used() const {
    std::vector<std::string> known(used_.begin(), used_.end());
    for (const auto& [k, v] : j_.items())
      if (!used_.count(k)) {
        const std::string near = closest_match(k, known);
        fail(key(k),
             "is not a known key" + (near.empty() ? "" : " (did you mean '" + key(near) + "'?)"));
      }
  }

 private:
  const json& j_;
  std::string path_, origin_;
  std::set<std::string> used_;
};

const std::set<std::string> kSections = {"dataset",   "model",  "optimizer",
                                         "lr_finder", "policy", "trainer"};

}  // namespace

RunSpec parse_run_config(const std::string& text, const std::string& origin) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    throw UsageError(origin + ": invalid JSON: " + e.what());
  }
  RunSpec s;
  s.program = "train";
  Section top(root, "", origin);
  // Unknown top-level keys first: a misspelt section would otherwise surface as a missing one.
  {
    std::vector<std::string> known(kSections.begin(), kSections.end());
    for (const char* k : {"log_dir", "device", "seed", "plots", "save_model"}) known.push_back(k);
    for (const auto& [k, v] : root.items())
      if (std::find(known.begin(), known.end(), k) == known.end()) {
        const std::string near = closest_match(k, known);
        top.fail(k, "is not a known key" + (near.empty() ? "" : " (did you mean '" + near + "'?)"));
      }
  }
  const json empty = json::object();
  auto section = [&](const std::string& name) -> const json& {
    return top.has(name) ? top.at(name) : empty;
  };

  {
    Section d(section("dataset"), "dataset", origin);
    s.dataset = d.str("name", "", /*required=*/true);
    s.data_dir = d.str("data_dir", "");
    s.download = d.boolean("download", true);
    s.manifest = d.str("manifest", "");
    s.batch_size = d.integer("batch_size", 128, 1);
    s.eval_batch_size = d.integer("eval_batch_size", 256, 1);
    s.validation_fraction = d.num("validation_fraction", 0, 0, 0.99);
    s.workers = static_cast<int>(d.integer("workers", -1, -1));
    if (d.has("augment")) {
      const json& a = d.at("augment");
      if (a.is_boolean()) {
        s.augment = a.get<bool>() ? 1 : 0;
      } else if (!(a.is_string() && a.get<std::string>() == "auto")) {
        d.fail("dataset.augment", "must be true, false or \"auto\", got " + a.dump());
      }
    }
    d.check_all_used();
  }
  {
    Section m(section("model"), "model", origin);
    s.model = m.str("name", "");
    s.activation = m.str("activation", "relu");
    s.initializer = m.str("initializer", "he_normal");
    s.dropout = m.num("dropout", 0, 0, 0.99);
    m.check_all_used();
  }
  if (top.has("optimizer")) {
    json o = top.at("optimizer");
    if (!o.is_object()) top.fail("optimizer", "must be a JSON object");
    if (o.contains("name")) {
      if (!o["name"].is_string()) top.fail("optimizer.name", "must be a string");
      s.optimizer = o["name"].get<std::string>();
      o.erase("name");
    }
    if (o.contains("lr"))
      top.fail("optimizer.lr", "is set by the policy; put the rate in \"policy\" instead");
    s.optimizer_json = o.dump();
  } else {
    s.optimizer_json = R"({"momentum": 0.9})";
  }
  if (top.has("lr_finder")) {
    Section f(top.at("lr_finder"), "lr_finder", origin);
    s.finder.enabled = f.boolean("enabled", true);
    LrFinderOptions& o = s.finder.options;
    o.start_lr = f.num("start_lr", 1e-5, 1e-300, 1e300);
    o.end_lr = f.num("end_lr", 10, 1e-300, 1e300);
    if (!(o.end_lr > o.start_lr)) f.fail("lr_finder.end_lr", "must be greater than start_lr");
    o.num_steps = f.integer("num_steps", 400, 2);
    const std::string mode = f.str("mode", "exponential");
    if (mode != "exponential" && mode != "linear")
      f.fail("lr_finder.mode", "= \"" + mode + "\" must be \"exponential\" or \"linear\"");
    o.exponential = mode == "exponential";
    o.smooth_beta = f.num("smooth_beta", 0.98, 0, 0.999999);
    o.diverge_th = f.num("diverge_th", 4, 0);
    o.val_every = f.integer("val_every", 0, 0);
    o.val_batches = f.integer("val_batches", 8, 1);
    s.finder.suggestion = f.str("suggestion", "min_loss");
    bool known = false;
    for (const auto& n : suggestion_names()) known = known || n == s.finder.suggestion;
    if (!known)
      f.fail("lr_finder.suggestion",
             "= \"" + s.finder.suggestion +
                 "\" is not one of min_loss, min_loss_div10, steepest, valley");
    s.finder.repeats = f.integer("repeats", 1, 1);
    s.finder.momentum_test = f.numbers("momentum_test");
    s.finder.wd_test = f.numbers("wd_test");
    f.check_all_used();
  }
  {
    Section t(section("trainer"), "trainer", origin);
    TrainerOptions& o = s.trainer;
    o.epochs = t.integer("epochs", 1, 1);
    o.limit_train_batches = t.integer("limit_train_batches", 0, 0);
    o.clip_grad_norm = t.num("clip_grad_norm", 0, 0);
    o.label_smoothing = t.num("label_smoothing", 0, 0, 1);
    o.checkpoint_every = t.integer("checkpoint_every", 0, 0);
    o.keep_checkpoints = static_cast<int>(t.integer("keep_checkpoints", 2, 0));
    o.early_stop_patience = t.integer("early_stop_patience", 0, 0);
    o.early_stop_min_delta = t.num("early_stop_min_delta", 0, 0);
    o.snapshot_ensemble = t.boolean("snapshot_ensemble", false);
    o.log_every_steps = t.integer("log_every_steps", 50, 0);
    o.tensorboard = t.boolean("tensorboard", true);
    o.checkpoint_dir = t.str("checkpoint_dir", "");
    if (t.has("phases")) {
      const json& ph = t.at("phases");
      if (!ph.is_array()) t.fail("trainer.phases", "must be a list of objects");
      for (size_t i = 0; i < ph.size(); ++i) {
        Section p(ph[i], "trainer.phases[" + std::to_string(i) + "]", origin);
        PhaseChange c;
        c.epoch = p.integer("epoch", 0, 0);
        c.freeze = p.strings("freeze");
        c.unfreeze = p.strings("unfreeze");
        p.check_all_used();
        o.phases.push_back(c);
      }
    }
    t.check_all_used();
  }
  if (top.has("policy")) {
    if (!top.at("policy").is_object()) top.fail("policy", "must be a JSON object");
    s.policy_json = top.at("policy").dump();
  } else if (!s.finder.enabled) {
    top.fail("policy", "is required (or add \"lr_finder\" to train at the rate it finds)");
  }
  s.log_dir = top.str("log_dir", "./logs");
  s.device = top.str("device", "auto");
  s.seed = static_cast<uint64_t>(top.integer("seed", 0, 0));
  s.plots = top.boolean("plots", true);
  s.save_model = top.boolean("save_model", false);
  top.check_all_used();
  return s;
}

RunSpec load_run_config(const std::string& path) {
  return parse_run_config(read_file(path, 16u << 20), path);
}

}  // namespace cyclone::train
