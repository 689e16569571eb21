#include "cyclone/train/run_config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "cyclone/core/file_util.h"
#include "cyclone/core/spelling.h"
#include "cyclone/data/registry.h"
#include "cyclone/train/cli.h"
#include "cyclone/train/config_section.h"
#include "cyclone/train/config_tree.h"
#include "cyclone/train/precision.h"

namespace cyclone::train {

using json = nlohmann::json;
namespace fs = std::filesystem;

using namespace detail;

namespace {

const json kEmpty = json::object();

// ---- aliases: microDL's names win; the other spellings are accepted (README, "Config keys") ----

struct Alias {
  const char* alias;
  const char* canonical;
};
// Applied in order (a section alias before the keys inside it).
constexpr Alias kAliases[] = {
    {"model", "network"},
    {"network.name", "network.class"},
    {"log_dir", "trainer.model_dir"},
    {"seed", "dataset.random_seed"},
    {"dataset.validation_fraction", "dataset.split_ratio.val"},
    {"dataset.batch_size", "trainer.batch_size"},
    {"dataset.workers", "trainer.workers"},
    {"optimizer", "trainer.optimizer"},
    {"trainer.epochs", "trainer.max_epochs"},
    {"trainer.early_stop_patience", "trainer.patience"},
};

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  size_t b = 0;
  for (size_t e; (e = path.find('.', b)) != std::string::npos; b = e + 1)
    out.push_back(path.substr(b, e - b));
  out.push_back(path.substr(b));
  return out;
}

json* find_path(json& root, const std::string& path) {
  json* j = &root;
  for (const std::string& k : split_path(path)) {
    if (!j->is_object() || !j->contains(k)) return nullptr;
    j = &(*j)[k];
  }
  return j;
}

void apply_aliases(json& root, const std::string& origin) {
  for (const Alias& a : kAliases) {
    const std::vector<std::string> from = split_path(a.alias);
    json* parent = &root;
    for (size_t i = 0; i + 1 < from.size() && parent; ++i)
      parent = parent->is_object() && parent->contains(from[i]) ? &(*parent)[from[i]] : nullptr;
    if (!parent || !parent->is_object() || !parent->contains(from.back())) continue;
    if (find_path(root, a.canonical))
      throw UsageError(origin + ": " + a.alias + " and " + a.canonical + " are the same setting (" +
                       a.alias + " is the other spelling); give one");
    g_given_as[a.canonical] = a.alias;
    json value = std::move((*parent)[from.back()]);
    parent->erase(from.back());
    json* dst = &root;
    const std::vector<std::string> to = split_path(a.canonical);
    for (size_t i = 0; i + 1 < to.size(); ++i) {
      if (!dst->contains(to[i])) (*dst)[to[i]] = json::object();
      dst = &(*dst)[to[i]];
      if (!dst->is_object())
        throw UsageError(origin + ": " + a.canonical + " needs " + to[i] + " to be a mapping");
    }
    (*dst)[to.back()] = std::move(value);
  }
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& config_aliases() {
  static const std::vector<std::pair<std::string, std::string>> table = [] {
    std::vector<std::pair<std::string, std::string>> t;
    for (const Alias& a : kAliases) t.emplace_back(a.alias, a.canonical);
    return t;
  }();
  return table;
}

RunSpec parse_run_config(const std::string& text, const std::string& origin) {
  json root = json::parse(config_text_to_json(text, config_syntax_of(origin), origin));
  if (!root.is_object()) throw UsageError(origin + ": the config must be a mapping of sections");
  g_given_as.clear();
  apply_aliases(root, origin);
  RunSpec s;
  s.program = "train";
  s.origin = origin;
  s.training_log = true;
  s.trainer.early_stop_monitor = "val_loss";
  Section top(root, "", origin);
  // Unknown top-level keys first: a misspelt section would otherwise surface as a missing one.
  {
    const std::vector<std::string> known = {"dataset",   "network",    "trainer",
                                            "lr_finder", "policy",     "device",
                                            "plots",     "save_model", "verbose"};
    for (const auto& [k, v] : root.items())
      if (std::find(known.begin(), known.end(), k) == known.end()) {
        const std::string near = closest_match(k, known);
        top.fail(k, "is not a known key" + (near.empty() ? "" : " (did you mean '" + near + "'?)"));
      }
  }
  auto section = [&](const std::string& name) -> const json& {
    return top.has(name) ? top.at(name) : kEmpty;
  };

  {
    Section d(section("dataset"), "dataset", origin);
    s.dataset = d.str("name", "", /*required=*/true);
    const data::DatasetInfo* info = nullptr;
    try {
      info = &data::dataset_info(s.dataset);
    } catch (const Error& e) {
      d.fail("dataset.name", "= \"" + s.dataset + "\": " + e.message());
    }
    s.data_dir = d.str("data_dir", "");
    s.download = d.boolean("download", true);
    s.manifest = d.str("manifest", "");
    s.eval_batch_size = d.integer("eval_batch_size", 256, 1);
    s.seed = static_cast<uint64_t>(d.integer("random_seed", 0, 0));
    s.source_split = d.str("source_split", "train");
    if (s.source_split != "train" && s.source_split != "test")
      d.fail("dataset.source_split", "= \"" + s.source_split + "\" must be \"train\" or \"test\"");
    if (d.has("split_ratio")) {
      Section r(d.at("split_ratio"), "dataset.split_ratio", origin);
      s.train_fraction = r.num("train", 0, 0, 1);
      s.validation_fraction = r.num("val", 0, 0, 0.99);
      s.test_fraction = r.num("test", 0, 0, 0.99);
      const double sum = s.train_fraction + s.validation_fraction + s.test_fraction;
      if (sum > 1 + 1e-9)
        r.fail("dataset.split_ratio", "sums to " + format_number(sum) + "; it must be <= 1");
      if (s.validation_fraction + s.test_fraction > 1 - 1e-9)
        r.fail("dataset.split_ratio",
               "val + test = " + format_number(s.validation_fraction + s.test_fraction) +
                   " leaves no image to train on; they must sum to less than 1");
      if (s.train_fraction == 0) s.train_fraction = 1 - s.validation_fraction - s.test_fraction;
      r.check_all_used();
    }
    if (s.source_split == "test" && s.test_fraction == 0)
      d.fail("dataset.source_split",
             "= \"test\" trains on the test files: carve the test set from them too "
             "(split_ratio.test > 0) so that the reported accuracy is on unseen images");
    s.expect_height = d.integer("height", 0, 1);
    s.expect_width = d.integer("width", 0, 1);
    if ((s.expect_height > 0) != (s.expect_width > 0))
      d.fail(s.expect_height > 0 ? "dataset.height" : "dataset.width",
             "is given without dataset." + std::string(s.expect_height > 0 ? "width" : "height") +
                 ": give both (the image size checked against the data) or neither");
    if (s.expect_height > 0 && (s.expect_height != info->height || s.expect_width != info->width))
      d.fail("dataset.height",
             "x width = " + std::to_string(s.expect_height) + " x " +
                 std::to_string(s.expect_width) + " but " + s.dataset + "'s images are " +
                 std::to_string(info->height) + " x " + std::to_string(info->width) +
                 " (the size its models are built for): drop the keys or give that size");
    s.pad_to = d.integer("pad_to", 0, 0);  // its range is checked with the dataset's size (run.cpp)
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
    Section n(section("network"), "network", origin);
    s.model = n.str("class", "");
    if (n.has("activation") && n.at("activation").is_object()) {
      Section a(n.at("activation"), "network.activation", origin);  // microDL: {type: relu}
      s.activation = a.str("type", "", true);
      a.check_all_used();
    } else {
      s.activation = n.str("activation", "relu");
    }
    s.initializer = n.str("initializer", "he_normal");
    s.dropout = n.num("dropout", 0, 0, 0.99);
    if (n.has("batch_norm")) s.batch_norm = n.boolean("batch_norm", false) ? 1 : 0;
    if (n.has("num_filters_per_block")) {
      for (double v : n.numbers("num_filters_per_block")) {
        if (!(v >= 1 && v == std::floor(v)))
          n.fail("network.num_filters_per_block", "must be positive integers");
        s.filters.push_back(static_cast<int64_t>(v));
      }
    }
    if (n.has("layer_groups")) {
      if (!n.at("layer_groups").is_array())
        n.fail("network.layer_groups", "must be a list of {name, prefixes}");
      for (size_t i = 0; i < n.at("layer_groups").size(); ++i)
        s.layer_groups.push_back(read_group(
            n.at("layer_groups")[i], "network.layer_groups[" + std::to_string(i) + "]", origin));
    }
    s.model_fname = n.str("model_fname", "");
    s.partial = n.boolean("partial", false);
    s.new_head = n.boolean("new_head", false);
    n.check_all_used();
  }
  if (top.has("lr_finder")) {
    Section f(top.at("lr_finder"), "lr_finder", origin);
    read_finder(f, s.finder, "lr_finder");
    f.check_all_used();
  }
  bool has_scheduler = false;
  std::optional<double> optimizer_lr;
  {
    Section t(section("trainer"), "trainer", origin);
    TrainerOptions& o = s.trainer;
    s.log_dir = t.str("model_dir", "./logs");
    if (s.log_dir.empty())
      t.fail("trainer.model_dir", "is empty: give the folder the run writes to (default ./logs)");
    s.batch_size = t.integer("batch_size", 128, 1);
    s.workers = static_cast<int>(t.integer("workers", -1, -1));
    o.epochs = t.integer("max_epochs", 1, 1);
    if (o.epochs > 1000000)  // best_lr's --num_epochs bound: step counts stay far from overflow
      t.fail("trainer.max_epochs", "= " + std::to_string(o.epochs) + " is more than 1000000");
    std::optional<int64_t> patience;
    if (t.has("patience")) patience = t.integer("patience", 0, 0);
    s.loss = ascii_lower(t.str("loss", "cross_entropy"));
    if (s.loss == "categorical_crossentropy" || s.loss == "sparse_categorical_crossentropy" ||
        s.loss == "crossentropy")
      s.loss = "cross_entropy";
    if (s.loss != "cross_entropy")
      t.fail("trainer.loss", "= \"" + s.loss +
                                 "\": the models here are classifiers trained with cross_entropy "
                                 "(also spelt categorical_crossentropy)");
    if (t.has("metrics")) {
      const json& m = t.at("metrics");
      s.metrics =
          m.is_string() ? std::vector<std::string>{m.get<std::string>()} : t.strings("metrics");
      for (std::string& name : s.metrics) {
        name = ascii_lower(name);
        if (name == "acc" || name == "categorical_accuracy") name = "accuracy";
        if (name == "top_k_categorical_accuracy" || name == "top5_accuracy") name = "top5";
        if (name != "accuracy" && name != "top5" && name != "loss")
          t.fail("trainer.metrics", "\"" + name + "\" is not one of accuracy, top5, loss");
        // Top-5 is scored for datasets of more than 10 classes (evaluate, metrics.h): asked for
        // on fewer it would be a column of NaN, said nowhere.
        const int64_t classes = data::dataset_info(s.dataset).num_classes;
        if (name == "top5" && classes <= 10)
          t.fail("trainer.metrics", "asks for top5, but " + s.dataset + " has " +
                                        std::to_string(classes) +
                                        " classes: top-5 accuracy is scored for datasets of more "
                                        "than 10 (cifar100); drop it");
      }
    }
    if (t.has("resume")) {
      const json& r = t.at("resume");
      if (r.is_boolean()) {
        if (r.get<bool>()) {
          s.resume = (fs::path(s.log_dir) / "checkpoints").string();
          s.resume_in_log_dir = true;
        }
      } else if (r.is_string()) {
        s.resume = r.get<std::string>();
      } else {
        t.fail("trainer.resume", "must be true, false or a checkpoint path, got " + r.dump());
      }
    }
    if (t.has("optimizer")) {
      json opt = t.at("optimizer");
      if (!opt.is_object()) t.fail("trainer.optimizer", "must be a mapping");
      if (opt.contains("name")) {
        if (!opt["name"].is_string()) t.fail("trainer.optimizer.name", "must be a string");
        s.optimizer = ascii_lower(opt["name"].get<std::string>());
        opt.erase("name");
      }
      if (opt.contains("lr")) {
        if (!opt["lr"].is_number() || !(opt["lr"].get<double>() > 0))
          t.fail("trainer.optimizer.lr", "must be a positive number, got " + opt["lr"].dump());
        optimizer_lr = opt["lr"].get<double>();
        opt.erase("lr");
      }
      s.optimizer_json = opt.dump();
    } else {
      s.optimizer_json = R"({"momentum": 0.9})";
    }
    o.limit_train_batches = t.integer("limit_train_batches", 0, 0);
    s.limit_eval_batches = t.integer("limit_eval_batches", 0, 0);
    o.clip_grad_norm = t.num("clip_grad_norm", 0, 0);
    s.lr_scaling = ascii_lower(t.str("lr_scaling", "linear"));
    if (s.lr_scaling != "linear" && s.lr_scaling != "sqrt" && s.lr_scaling != "none")
      t.fail("trainer.lr_scaling", "= \"" + s.lr_scaling + "\" is not one of linear, sqrt, none");
    s.lr_warmup_epochs = t.num("lr_warmup_epochs", -1, -INFINITY, 1e6);  // < 0: the default
    s.sync_batch_norm = t.boolean("sync_batch_norm", false);
    o.sync_every = t.integer("sync_every", 0, 0);
    o.cuda_graph = t.boolean("cuda_graph", true);
    s.precision = ascii_lower(t.str("precision", "fp32"));
    if (!parse_precision(s.precision))
      t.fail("trainer.precision", "= \"" + s.precision + "\" is not one of " + precision_choices());
    s.channels_last = t.boolean("channels_last", false);
    o.label_smoothing = t.num("label_smoothing", 0, 0, 1);
    o.checkpoint_every = t.integer("checkpoint_every", 0, 0);
    o.checkpoint_every_steps = t.integer("checkpoint_every_steps", 0, 0);
    o.keep_checkpoints = static_cast<int>(t.integer("keep_checkpoints", 2, 0));
    o.early_stop_min_delta = t.num("early_stop_min_delta", 0, 0);
    o.snapshot_ensemble = t.boolean("snapshot_ensemble", false);
    o.log_every_steps = t.integer("log_every_steps", 50, 0);
    o.tensorboard = t.boolean("tensorboard", true);
    o.checkpoint_dir = t.str("checkpoint_dir", "");
    if (t.has("callbacks")) {
      if (t.has("tensorboard") && !o.tensorboard && t.at("callbacks").contains("TensorBoard"))
        t.fail("trainer.tensorboard", "is false but trainer.callbacks.TensorBoard is given");
      read_callbacks(t, s, has_scheduler, patience, origin);
    }
    if (patience) o.early_stop_patience = *patience;
    if (t.has("phases")) {
      if (t.has("max_epochs"))
        t.fail("trainer.max_epochs", "is unused with trainer.phases: give each phase its epochs");
      const json& ph = t.at("phases");
      if (!ph.is_array() || ph.empty()) t.fail("trainer.phases", "must be a non-empty list");
      for (size_t i = 0; i < ph.size(); ++i) {
        s.phases.push_back(read_phase(ph[i], i, s, origin));
        // One folder per phase: a second phase of the same name would share it, and resuming
        // would take its phase_done.json for its own.
        for (size_t k = 0; k < i; ++k)
          if (s.phases[k].name == s.phases[i].name)
            t.fail("trainer.phases[" + std::to_string(i) + "].name",
                   "= \"" + s.phases[i].name + "\" is also the name of trainer.phases[" +
                       std::to_string(k) +
                       "]; phase names must differ (each phase writes to model_dir/<name>/)");
      }
    }
    t.check_all_used();
  }
  if (has_scheduler && (top.has("policy") || top.has("lr_finder")))
    top.fail(top.has("policy") ? "policy" : "lr_finder",
             "and trainer.callbacks.LearningRateScheduler both set the rate; give one");
  if (!s.phases.empty() && (top.has("policy") || has_scheduler))
    top.fail("trainer.phases",
             "give each phase its policy (the run's policy is unused with phases)");
  // Where the run's policy comes from, for its errors.
  std::string policy_path = has_scheduler ? "trainer.callbacks.LearningRateScheduler" : "lr_finder";
  if (top.has("policy")) {
    if (!top.at("policy").is_object()) top.fail("policy", "must be a mapping");
    s.policy_json = top.at("policy").dump();
    policy_path = "policy";
  } else if (!has_scheduler && s.phases.empty()) {
    if (optimizer_lr && !s.finder.enabled) {
      s.policy_json = json({{"policy", "constant"}, {"lr", *optimizer_lr}}).dump();
      policy_path = "trainer.optimizer.lr";
    } else if (!s.finder.enabled) {
      top.fail("policy",
               "is required (or trainer.optimizer.lr for a constant rate, or lr_finder to train "
               "at the rate it finds, or trainer.callbacks.LearningRateScheduler)");
    }
  }
  s.device = top.str("device", "auto");
  s.plots = top.boolean("plots", true);
  s.save_model = top.boolean("save_model", false);
  top.integer("verbose", 0, 0);  // microDL's logging level: our output does not vary with it
  top.check_all_used();
  check_policies_and_optimizer(s, policy_path, origin);
  return s;
}

RunSpec load_run_config(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec) && !ec)
    throw UsageError(path + ": no such config file (check the path)");
  if (fs::is_directory(path, ec)) throw UsageError(path + ": is a directory, not a config file");
  return parse_run_config(read_file(path, 16u << 20), path);
}

}  // namespace cyclone::train
