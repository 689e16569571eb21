// The readers of the config's larger parts: microDL's callbacks, range tests and phases.
#include <algorithm>
#include <cctype>
#include <filesystem>

#include "cyclone/train/config_section.h"
#include "cyclone/train/run_detail.h"

namespace cyclone::train::detail {

thread_local std::map<std::string, std::string> g_given_as;

namespace {

// A range test's divergence threshold: 0 turns the stop off; otherwise the test stops once the
// smoothed loss exceeds diverge_th times the best, which needs diverge_th > 1 (at or below 1 it
// would stop at the first step that is not a new best, and blame a non-finite loss).
double read_diverge_th(Section& c, const std::string& path) {
  const double v = c.num("diverge_th", 4, 0);
  if (v > 0 && v <= 1)
    c.fail(path + ".diverge_th", "= " + json(v).dump() +
                                     " must be 0 (no divergence stop) or greater than 1 (stop once "
                                     "the smoothed loss exceeds that many times the best)");
  return v;
}

// microDL's trainer.callbacks.LearningRateScheduler.
void read_lr_scheduler(Section& c, RunSpec& s, const std::string& path, int64_t max_epochs) {
  const bool find = c.boolean("lr_find", false);
  c.boolean("verbose", false);
  if (find) {
    s.finder.enabled = true;
    s.finder_only = true;
    LrFinderOptions& o = s.finder.options;
    o.start_lr = c.num("base_lr", 1e-4, 1e-300, 1e300);  // microDL's LRFinder defaults
    o.end_lr = c.num("max_lr", 0.1, 1e-300, 1e300);
    if (!(o.end_lr > o.start_lr)) c.fail(path + ".max_lr", "must be greater than base_lr");
    s.finder.epochs = c.num("max_epochs", static_cast<double>(max_epochs), 1e-6, 1e6);
    const std::string mode = c.str("mode", "linear");
    if (mode != "linear" && mode != "exp" && mode != "exponential")
      c.fail(path + ".mode", "= \"" + mode + "\" must be \"linear\" (microDL's) or \"exp\"");
    o.exponential = mode != "linear";
    o.diverge_th = read_diverge_th(c, path);
    o.smooth_beta = c.num("smooth_beta", 0.98, 0, 0.999999);
    s.finder_plot = c.str("fig_fname", "lr_finder_result.svg");  // in model_dir, as microDL
    const std::filesystem::path plot = std::filesystem::path(s.finder_plot).lexically_normal();
    if (plot.extension() != ".svg")
      c.fail(path + ".fig_fname", "= \"" + s.finder_plot +
                                      "\": Cyclone draws its plots as SVG; give a name ending "
                                      "in .svg");
    // lr_finder.svg is the plot's own default name: naming it is harmless.
    if (!plot.has_parent_path() && plot != "lr_finder.svg" && is_run_output_name(plot.string()))
      c.fail(path + ".fig_fname", "= \"" + s.finder_plot +
                                      "\" is a file the run itself writes in model_dir: choose "
                                      "another name");
    for (const char* k : {"step_size", "gamma", "scale_mode"})
      if (c.has(k))
        c.fail(path + "." + k, "is a cyclic-rate setting; with lr_find: true it is unused");
    return;
  }
  for (const char* k : {"fig_fname", "mode", "diverge_th", "smooth_beta", "max_epochs"})
    if (c.has(k)) c.fail(path + "." + k, "is a range-test setting; it needs lr_find: true");
  json pol = {{"policy", "exp_range"}};
  pol["base_lr"] = c.num("base_lr", 0.001, 0, 1e300);  // microDL's CyclicLearning defaults
  pol["max_lr"] = c.num("max_lr", 0.006, 0, 1e300);
  pol["step_size_epochs"] = c.num("step_size", 2, 1e-6, 1e6);  // epochs, as microDL
  pol["gamma"] = c.num("gamma", 1, 1e-12, 1);
  const std::string sm = c.str("scale_mode", "cycle");
  if (sm != "cycle" && sm != "iterations")
    c.fail(path + ".scale_mode", "= \"" + sm + "\" must be \"cycle\" or \"iterations\"");
  pol["scale_mode"] = sm;
  s.policy_json = pol.dump();
}

}  // namespace

void read_finder(Section& f, FinderSpec& spec, const std::string& path) {
  spec.enabled = f.boolean("enabled", true);
  LrFinderOptions& o = spec.options;
  o.start_lr = f.num("start_lr", 1e-5, 1e-300, 1e300);
  o.end_lr = f.num("end_lr", 10, 1e-300, 1e300);
  if (!(o.end_lr > o.start_lr)) f.fail(path + ".end_lr", "must be greater than start_lr");
  if (f.has("num_steps") && f.has("num_epochs"))
    f.fail(path + ".num_epochs",
           "and " + path + ".num_steps both set: give one (the test's length)");
  o.num_steps = f.integer("num_steps", 400, 2);
  spec.epochs = f.num("num_epochs", 0, 0, 1e6);
  const std::string mode = f.str("mode", "exponential");
  if (mode != "exponential" && mode != "linear" && mode != "exp")
    f.fail(path + ".mode", "= \"" + mode + "\" must be \"exponential\" (\"exp\") or \"linear\"");
  o.exponential = mode != "linear";
  o.smooth_beta = f.num("smooth_beta", 0.98, 0, 0.999999);
  o.diverge_th = read_diverge_th(f, path);
  o.val_every = f.integer("val_every", 0, 0);
  o.val_batches = f.integer("val_batches", 8, 1);
  spec.suggestion = f.str("suggestion", "min_loss");
  const auto& names = suggestion_names();
  if (std::find(names.begin(), names.end(), spec.suggestion) == names.end())
    f.fail(path + ".suggestion", "= \"" + spec.suggestion +
                                     "\" is not one of min_loss, min_loss_div10, steepest, valley");
  spec.repeats = f.integer("repeats", 1, 1);
  spec.momentum_test = f.numbers("momentum_test");
  spec.wd_test = f.numbers("wd_test");
}

void read_callbacks(Section& t, RunSpec& s, bool& has_scheduler, std::optional<int64_t>& patience,
                    const std::string& origin) {
  const std::string base = "trainer.callbacks";
  Section cbs(t.at("callbacks"), base, origin);
  if (cbs.has("LearningRateScheduler")) {
    has_scheduler = true;
    Section c(cbs.at("LearningRateScheduler"), base + ".LearningRateScheduler", origin);
    read_lr_scheduler(c, s, base + ".LearningRateScheduler", s.trainer.epochs);
    c.check_all_used();
  }
  if (cbs.has("EarlyStopping")) {
    const std::string p = base + ".EarlyStopping";
    Section c(cbs.at("EarlyStopping"), p, origin);
    s.trainer.early_stop_monitor = c.str("monitor", "val_loss");
    s.trainer.early_stop_mode = c.str("mode", "auto");
    try {
      check_monitor(s.trainer.early_stop_monitor, s.trainer.early_stop_mode);
    } catch (const Error& e) {
      c.fail(p, e.message());
    }
    if (c.has("patience")) {
      if (patience) c.fail(p + ".patience", "and trainer.patience are the same setting; give one");
      // Keras stops after `patience` epochs without improvement; patience 0 stops at the first.
      patience = std::max<int64_t>(1, c.integer("patience", 0, 0));
    } else if (!patience) {
      patience = 1;
    }
    s.trainer.early_stop_min_delta = c.num("min_delta", 0, 0);
    c.boolean("verbose", false);
    c.check_all_used();
  }
  if (cbs.has("ModelCheckpoint")) {
    const std::string p = base + ".ModelCheckpoint";
    Section c(cbs.at("ModelCheckpoint"), p, origin);
    ModelCheckpointSpec& m = s.model_checkpoint;
    m.enabled = true;
    m.monitor = c.str("monitor", "val_loss");
    m.mode = c.str("mode", "auto");
    try {
      check_monitor(m.monitor, m.mode);
    } catch (const Error& e) {
      c.fail(p, e.message());
    }
    m.save_best_only = c.boolean("save_best_only", false);  // Keras' default
    c.boolean("verbose", false);
    c.check_all_used();
  }
  if (cbs.has("TensorBoard")) {
    Section c(cbs.at("TensorBoard"), base + ".TensorBoard", origin);
    c.num("histogram_freq", 0, 0, 0);  // scalars only: no weight histograms
    c.boolean("write_graph", false);
    c.boolean("verbose", false);
    c.check_all_used();
    s.trainer.tensorboard = true;
  }
  cbs.check_all_used();
}

LayerGroup read_group(const json& g, const std::string& path, const std::string& origin) {
  Section sec(g, path, origin);
  LayerGroup out;
  out.name = sec.str("name", "", true);
  out.prefixes = sec.strings("prefixes");
  if (out.prefixes.empty()) sec.fail(path + ".prefixes", "must list at least one name prefix");
  sec.check_all_used();
  return out;
}

PhaseSpec read_phase(const json& j, size_t i, const RunSpec& s, const std::string& origin) {
  const std::string path = "trainer.phases[" + std::to_string(i) + "]";
  Section p(j, path, origin);
  PhaseSpec ph;
  ph.name = p.str("name", "phase" + std::to_string(i + 1));
  // The name is the phase's folder under model_dir: a path ("../x") would write elsewhere.
  const bool plain =
      !ph.name.empty() && ph.name != "." && ph.name != ".." &&
      std::all_of(ph.name.begin(), ph.name.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-';
      });
  if (!plain)
    p.fail(path + ".name", "= \"" + ph.name +
                               "\" must be a plain folder name (letters, digits, '.', '_', '-'; "
                               "not \".\" or \"..\"): the phase writes to model_dir/<name>/");
  if (is_run_output_name(ph.name))
    p.fail(path + ".name", "= \"" + ph.name +
                               "\" is a file or folder the run itself writes in model_dir: "
                               "name the phase otherwise");
  if (p.has("lr_find")) {
    const json& f = p.at("lr_find");
    if (f.is_boolean()) {
      ph.lr_find = f.get<bool>();
      ph.finder = s.finder;  // the run's lr_finder options (or their defaults)
      ph.finder.enabled = true;
    } else {
      Section fs(f, path + ".lr_find", origin);
      read_finder(fs, ph.finder, path + ".lr_find");
      fs.check_all_used();
      ph.lr_find = ph.finder.enabled;
    }
  }
  ph.freeze = p.strings("freeze");
  if (p.has("lr_mult")) {
    const json& m = p.at("lr_mult");
    if (!m.is_object()) p.fail(path + ".lr_mult", "must map layer-group names to multipliers");
    for (const auto& [k, v] : m.items()) {
      if (!v.is_number() || !(v.get<double>() >= 0))
        p.fail(path + ".lr_mult." + k, "must be a number >= 0, got " + v.dump());
      ph.lr_mult.emplace_back(k, v.get<double>());
    }
  }
  if (ph.lr_find) {
    for (const char* k : {"policy", "epochs", "precompute", "augment"})
      if (p.has(k)) p.fail(path + "." + k, "does not apply to an lr_find phase");
  } else {
    ph.epochs = p.integer("epochs", 1, 1);
    if (!p.has("policy")) p.fail(path + ".policy", "is required (or lr_find: true)");
    if (!p.at("policy").is_object()) p.fail(path + ".policy", "must be a mapping");
    ph.policy_json = p.at("policy").dump();
    ph.precompute = p.boolean("precompute", false);
    if (p.has("augment")) ph.augment = p.boolean("augment", false) ? 1 : 0;
  }
  p.check_all_used();
  return ph;
}

}  // namespace cyclone::train::detail
