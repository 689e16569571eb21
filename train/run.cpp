#include "cyclone/train/run.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>

#include "cyclone/core/cuda/caching_allocator.h"
#include "cyclone/core/cuda/runtime.h"
#include "cyclone/core/device.h"
#include "cyclone/core/file_util.h"
#include "cyclone/core/progress.h"
#include "cyclone/data/manifest.h"
#include "cyclone/data/registry.h"
#include "cyclone/dist/world.h"
#include "cyclone/kernels/gemm.h"
#include "cyclone/models/registry.h"
#include "cyclone/optim/optimizer.h"
#include "cyclone/schedulers/policy.h"
#include "cyclone/train/checkpoint.h"
#include "cyclone/train/cli.h"
#include "cyclone/train/distributed.h"
#include "cyclone/train/log.h"
#include "cyclone/train/precision.h"
#include "cyclone/train/run_detail.h"
#include "cyclone/train/run_plots.h"
#include "cyclone/train/weights.h"

namespace cyclone::train {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;

json eval_json(const std::optional<EvalResult>& e) {
  if (!e) return nullptr;
  json j = {{"loss", e->loss}, {"accuracy", e->top1}, {"samples", e->samples}};
  if (e->top5 >= 0) j["top5"] = e->top5;
  return j;
}

// JSON has no NaN: non-finite numbers become null so every reader can parse the summary.

bool has_batch_norm(Module& m) {
  for (auto& [name, mod] : m.named_modules())
    if (mod->type_name() == "BatchNorm2d") return true;
  return false;
}

// A device this machine can give, the memory cap applied; malformed names are the user's typo
// (exit 2), a well-formed one this machine lacks a runtime error (exit 1, from resolve_device).
Device setup_device(const RunSpec& spec) {
  const std::string& dv = spec.device;
  if (!device_spec_well_formed(dv))
    throw UsageError("device '" + dv + "' is not auto, cpu, cuda or cuda:N");
  if (!(spec.gpu_mem_frac > 0 && spec.gpu_mem_frac <= 1))
    throw UsageError("gpu_mem_frac " + format_double("%g", spec.gpu_mem_frac) +
                     " must be in (0, 1]");
  // One GPU per rank in a data-parallel job: cuda:<local rank>.
  const Device device = dist::world().device_for(resolve_device(spec.device));
  // The thread's current device: a kernel launched on cuda:N's stream while another device is
  // current fails (each rank of a node, or --device=cuda:1).
  if (device.is_cuda()) gpu::set_device(device.index);
  if (spec.gpu_mem_frac < 1) {
    if (!device.is_cuda())
      throw UsageError("--gpu_mem_frac caps GPU memory, but this run is on " + device.str() +
                       " (drop the flag, or run on a GPU with --gpu ID)");
    const size_t total = gpu::device_total_memory(device.index);
    const auto cap = static_cast<size_t>(spec.gpu_mem_frac * static_cast<double>(total));
    gpu::set_memory_limit(device.index, cap);
    log_print("%s: GPU memory pool capped at %.2f GiB (%.0f%% of %s's %.2f GiB)\n",
              spec.program.c_str(), cap / 1073741824.0, 100 * spec.gpu_mem_frac,
              device.str().c_str(), total / 1073741824.0);
  }
  return device;
}

// The training files split as the spec says (dataset.split_ratio), each part drawn by the seed.
void load_splits(detail::RunContext& c) {
  const RunSpec& spec = c.spec;
  data::LoadOptions lo;
  lo.data_dir = spec.data_dir;
  lo.download = spec.download;
  lo.manifest = spec.manifest;
  if (spec.program == "train") lo.other_dir = "set dataset.data_dir";
  data::Dataset source = data::load_dataset(spec.dataset, spec.source_split, lo);
  if ((spec.expect_height > 0 && spec.expect_height != source.height()) ||
      (spec.expect_width > 0 && spec.expect_width != source.width()))
    throw UsageError("dataset.height x width is " + std::to_string(spec.expect_height) + " x " +
                     std::to_string(spec.expect_width) + " but " + spec.dataset + "'s images are " +
                     std::to_string(source.height()) + " x " + std::to_string(source.width()));
  if (spec.pad_to > 0) source = data::pad_images(source, spec.pad_to);
  const int64_t n = source.size();
  // A held-out part that rounds to no image would be scored as loss 0, accuracy 0; one that takes
  // every image leaves nothing to train on.
  const bool cfg = spec.program == "train";
  const auto check_part = [&](const std::string& key, double given, double of_rest, int64_t rest,
                              const std::string& part) {
    const auto k = std::llround(std::min(of_rest, 1.0) * static_cast<double>(rest));
    if (k < 1 || k >= rest)
      throw UsageError(key + " " + format_number(given) + " makes a " + part + " split of " +
                       std::to_string(k) + " of the " + std::to_string(rest) + " images, leaving " +
                       std::to_string(rest - k) +
                       " to train on: each part needs at least one image; change the fraction");
  };
  const int64_t n_test = std::llround(spec.test_fraction * static_cast<double>(n));
  if (spec.test_fraction > 0)
    check_part("dataset.split_ratio.test", spec.test_fraction, spec.test_fraction, n, "test");
  if (spec.validation_fraction > 0)
    check_part(cfg ? "dataset.split_ratio.val" : "--validation_fraction", spec.validation_fraction,
               spec.validation_fraction / (1 - spec.test_fraction), n - n_test, "validation");
  if (spec.test_fraction > 0) {
    data::Split s = data::split_validation(source, spec.test_fraction, spec.seed ^ 0x7e57ull);
    source = std::move(s.train);
    c.test_set = std::move(s.validation);
  } else {
    c.test_set = data::load_dataset(spec.dataset, "test", lo);
    if (spec.pad_to > 0) c.test_set = data::pad_images(c.test_set, spec.pad_to);
  }
  c.use_val = spec.validation_fraction > 0;
  c.train_set = source;
  c.eval_set = c.test_set;
  if (c.use_val) {
    const double f = spec.validation_fraction / (1 - spec.test_fraction);
    data::Split s = data::split_validation(source, f, spec.seed);
    c.train_set = std::move(s.train);
    c.eval_set = std::move(s.validation);
  }
  const auto want = static_cast<int64_t>(std::llround(spec.train_fraction * n));
  if (spec.train_fraction > 0 && want < c.train_set.size()) {
    if (want < 1) throw UsageError("dataset.split_ratio.train leaves no training image");
    const double drop = 1 - static_cast<double>(want) / c.train_set.size();
    c.train_set =
        data::split_validation(c.train_set, drop, spec.seed ^ 0x7a11ull).train;  // the kept part
  }
  if (spec.limit_eval_batches > 0) {
    c.eval_set_full_size = c.eval_set.size();
    c.eval_set = detail::first_batches(c.eval_set, spec.limit_eval_batches, spec.eval_batch_size);
    c.test_set = detail::first_batches(c.test_set, spec.limit_eval_batches, spec.eval_batch_size);
  }
}

}  // namespace

namespace detail {

data::Dataset first_batches(const data::Dataset& d, int64_t batches, int64_t batch_size) {
  batch_size = std::max<int64_t>(batch_size, 1);
  const int64_t in_d = d.size() / batch_size + (d.size() % batch_size != 0);  // no overflow
  if (batches <= 0 || batches >= in_d) return d;
  std::vector<int64_t> idx(static_cast<size_t>(batches * batch_size));  // < d.size(): no overflow
  std::iota(idx.begin(), idx.end(), int64_t{0});
  return data::subset(d, idx, d.name);
}

}  // namespace detail

namespace {

// Ranks started differently are the user's command line: a usage error (exit 2).
void check_ranks_agree(dist::World& world, const std::string& what, const std::string& fp) {
  try {
    world.check_same(what, fp);
  } catch (const dist::RanksDiffer& e) {
    throw UsageError(e.message());
  }
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
  detail::check_monitors_have_a_split(spec);
  if (!detail::check_resume_target(spec)) return {};
  detail::check_outputs(spec);
  const json previous_summary = detail::previous_summary(spec);

  const data::DatasetInfo& info = [&]() -> const data::DatasetInfo& {
    try {
      return data::dataset_info(spec.dataset);
    } catch (const Error& e) {
      throw UsageError(e.message());
    }
  }();
  // Padding: at least the images' size, at most twice it (the padded copy of the dataset is held
  // in memory: 60,000 MNIST images at 56 x 56 are 188 MB).
  const int64_t side = std::max(info.height, info.width);
  if (spec.pad_to > 0 && (spec.pad_to < side || spec.pad_to > 2 * side))
    throw UsageError(std::string(spec.program == "train" ? "dataset.pad_to" : "--pad_to") + " " +
                     std::to_string(spec.pad_to) + " for " + spec.dataset + "'s " +
                     std::to_string(info.height) + " x " + std::to_string(info.width) +
                     " images: give a size from " + std::to_string(side) + " to " +
                     std::to_string(2 * side) + ", or 0 for none");
  if (!spec.manifest.empty()) {  // read when a dataset is missing: a typo must not wait for that
    try {
      (void)data::active_manifest(spec.manifest);
    } catch (const Error& e) {
      throw UsageError((prog == "train" ? "dataset.manifest: " : "--manifest: ") + e.message());
    }
  }
  dist::World& world = dist::world();
  const std::optional<Precision> precision = parse_precision(spec.precision);
  if (!precision)
    throw UsageError(std::string(spec.program == "train" ? "trainer.precision" : "--precision") +
                     " '" + spec.precision + "' is not one of " + precision_choices());
  const Device device = setup_device(spec);
  if (world.distributed()) {
    check_ranks_agree(world, "configuration", detail::rank_fingerprint(spec, device));
  }
  set_default_device(device);
  manual_seed(spec.seed);

  const detail::LogDir log_dir(spec.log_dir);  // removed again if the run writes nothing in it
  std::optional<TrainingLog> training_log;
  if (spec.training_log && !spec.summary_only && writes_files())
    training_log.emplace((fs::path(spec.log_dir) / "training.log").string());

  // ---- model ----
  const std::string model_name = spec.model.empty() ? default_model_for(spec.dataset) : spec.model;
  ModelOptions mo;
  mo.in_channels = info.channels;
  mo.height = spec.pad_to > 0 ? spec.pad_to : info.height;
  mo.width = spec.pad_to > 0 ? spec.pad_to : info.width;
  mo.num_classes = info.num_classes;
  mo.activation = spec.activation;
  mo.initializer = spec.initializer;
  mo.dropout = spec.dropout;
  mo.filters = spec.filters;
  mo.seed = spec.seed;
  mo.device = device;
  auto dropout_gen = std::make_shared<Generator>(dropout_seed(spec.seed));
  mo.dropout_generator = dropout_gen;
  std::shared_ptr<Module> model;
  const std::string named =
      (spec.program == "train" ? detail::origin_prefix(spec) + "network.class " : "model ") +
      model_name + ": ";
  try {
    model = make_model(model_name, mo);
  } catch (const OutOfMemory& e) {
    throw OutOfMemory(named + e.message());
  } catch (const Error& e) {
    // An unknown model, activation or initializer: the user's input.
    throw UsageError(named + e.message());
  }
  if (spec.batch_norm >= 0 && (spec.batch_norm == 1) != has_batch_norm(*model))
    throw UsageError("network.batch_norm: " + model_name +
                     (spec.batch_norm ? " has no batch norm (the resnet and wrn models do)"
                                      : " always uses batch norm"));
  apply_precision(*model, device, *precision);
  model->set_channels_last(spec.channels_last);
  if (!device.is_cuda() && *precision != Precision::kFp32)
    log_print("%s: --precision %s on the CPU: %s\n", prog.c_str(), precision_name(*precision),
              *precision == Precision::kTf32
                  ? "no effect (TF32 is a GPU tensor-core mode)"
                  : "emulated (products widened to float32 for OpenBLAS), to check the numerics; "
                    "slower, not faster");
  if (spec.summary_only) {
    log_print("%s",
              summary(*model, Shape({1, info.channels, mo.height, mo.width}), device).c_str());
    return {};
  }

  detail::RunContext c{spec, device, info, model_name, model, dropout_gen};
  c.log_dir = spec.log_dir;
  c.previous_summary = previous_summary;
  c.groups = spec.layer_groups.empty() ? model->layer_groups() : LayerGroups{};
  for (const LayerGroup& g : spec.layer_groups) c.groups.emplace_back(g.name, g.prefixes);
  for (const auto& [name, prefixes] : c.groups) {
    bool any = false;
    for (const auto& [pname, t] : model->named_parameters())
      for (const auto& p : prefixes) any = any || pname.rfind(p, 0) == 0;
    if (!any)
      throw UsageError("layer group '" + name + "' selects no parameter of " + model_name +
                       " (its prefixes match none of the names `train --summary` lists)");
  }
  detail::check_phase_groups(c);
  if (!spec.model_fname.empty()) {
    std::vector<std::string> keep;
    if (spec.new_head) keep = c.groups.back().second;
    const WeightsReport r = load_weights(*model, spec.model_fname, spec.partial, keep);
    log_print("%s: weights from %s: %s\n", prog.c_str(), spec.model_fname.c_str(),
              r.summary().c_str());
    c.summary["model_fname"] = spec.model_fname;
    c.summary["weights_loaded"] = r.loaded.size();
  }

  // ---- data ----
  // A dataset missing on the node is fetched once: rank 0 first, the other ranks after it. A
  // fetch takes as long as the network does: no step deadline while ranks wait for it.
  if (world.distributed() && !world.is_root())
    barrier_without_deadline(prog + ": " + dist::rank_prefix() + "waiting for rank 0 to load " +
                             spec.dataset +
                             " (downloading it first if it is missing; no time limit)");
  load_splits(c);
  if (world.distributed() && world.is_root()) barrier_without_deadline("");
  if (world.distributed())
    barrier_without_deadline(prog + ": " + dist::rank_prefix() +
                             "waiting for the other ranks to load " + spec.dataset);
  // On the CPU, OpenBLAS's kernels (kernels/gemm.h) decide the last bits of every result.
  // On a GPU, its name: the banner and the summary say which GPU a result came from.
  const std::string blas = device.is_cuda() ? "" : ", " + kernels::cpu_blas_kernels();
  const std::string gpu_name = device.is_cuda() ? gpu::device_name(device.index) : "";
  const std::string gpu_text = gpu_name.empty() ? "" : gpu_name + ", ";
  const std::string padded = spec.pad_to > 0 ? ", padded to " + std::to_string(spec.pad_to) +
                                                   " x " + std::to_string(spec.pad_to)
                                             : "";
  data::LoaderOptions& tl = c.train_options;
  tl.batch_size = spec.batch_size;
  tl.shuffle = true;
  const bool augment = spec.augment < 0 ? (spec.dataset == "cifar10" || spec.dataset == "cifar100")
                                        : spec.augment > 0;
  if (augment) tl.augment = detail::standard_augment(spec.dataset);
  const std::string eval_of = c.eval_set.size() < c.eval_set_full_size
                                  ? " of " + std::to_string(c.eval_set_full_size) +
                                        " (limit_eval_batches " +
                                        std::to_string(spec.limit_eval_batches) + ")"
                                  : "";
  log_print(
      "%s: %s on %s (%lld train / %lld%s %s images%s, augmentation: %s), device %s (%s%s%s%s), "
      "seed %llu\n",
      prog.c_str(), model_name.c_str(), spec.dataset.c_str(),
      static_cast<long long>(c.train_set.size()), static_cast<long long>(c.eval_set.size()),
      eval_of.c_str(), c.use_val ? "validation" : "test", padded.c_str(),
      data::describe(tl.augment).c_str(), device.str().c_str(), gpu_text.c_str(),
      precision_name(*precision), spec.channels_last ? ", channels last" : "", blas.c_str(),
      static_cast<unsigned long long>(spec.seed));
  tl.workers = spec.workers;
  tl.device = device;
  tl.seed = spec.seed;
  tl.mean = c.train_set.mean;
  tl.std = c.train_set.std;
  data::LoaderOptions& el = c.eval_options;
  el = tl;
  el.batch_size = std::max<int64_t>(spec.eval_batch_size, 1);
  el.shuffle = false;
  el.augment = data::Augment{};
  if (spec.finder.enabled && spec.finder.options.val_every > 0 && !c.use_val)
    throw UsageError(
        "the range test's held-out loss (lr_finder_val_every / lr_finder.val_every) needs a "
        "held-out split: set validation_fraction (e.g. 0.1); the test set is never used for it");

  c.summary.update(json{{"program", prog},
                        {"dataset", spec.dataset},
                        {"model", model_name},
                        {"device", device.str()},
                        {"precision", precision_name(*precision)},
                        {"channels_last", spec.channels_last},
                        {"optimizer", spec.optimizer},
                        {"batch_size", spec.batch_size},
                        {"augment", data::describe(tl.augment)},
                        {"seed", spec.seed},
                        {"parameters", model->num_parameters()}});
  if (!device.is_cuda()) c.summary["cpu_blas"] = kernels::cpu_blas_kernels();
  if (device.is_cuda()) c.summary["device_name"] = gpu_name;
  if (spec.pad_to > 0) c.summary["pad_to"] = spec.pad_to;
  if (spec.limit_eval_batches > 0) c.summary["limit_eval_batches"] = spec.limit_eval_batches;
  if (world.distributed()) {
    tl.shard = el.shard = world.rank();
    tl.num_shards = el.num_shards = world.size();
    check_ranks_agree(world, "data and model", detail::data_fingerprint(c, *model));
    log_print("%s: data parallel over %d ranks (%s), batch %lld per rank, global batch %lld\n",
              prog.c_str(), world.size(), world.launcher().c_str(),
              static_cast<long long>(spec.batch_size),
              static_cast<long long>(spec.batch_size * world.size()));
    if (world.size() == 1)
      log_print(
          "%s: a world of one under mpirun still reduces the gradients through the communicator "
          "every step%s; without mpirun the same run is faster\n",
          prog.c_str(), device.is_cuda() ? " and gives up CUDA graphs" : "");
    if (spec.sync_batch_norm) {
      const int n = synchronize_batch_norm(*model);
      log_print("%s: synchronized batch norm in %d layer(s)\n", prog.c_str(), n);
      // Its all-reduces run inside the forward and backward passes, which a rank with an empty
      // shard skips: a last global batch of fewer images than ranks is dropped instead.
      const int64_t rest = c.train_set.size() % (spec.batch_size * world.size());
      if (n > 0 && rest > 0 && rest < world.size()) {
        tl.drop_last = true;
        log_print(
            "%s: the last %lld training image(s) of each epoch are left out: fewer than "
            "the %d ranks, some would have none for synchronized batch norm\n",
            prog.c_str(), static_cast<long long>(rest), world.size());
      }
    }
    c.summary["ranks"] = world.size();
    c.summary["global_batch_size"] = spec.batch_size * world.size();
  }
  if (!spec.phases.empty()) {
    if (spec.resume.empty() && !spec.finder_only) {  // every phase's policy, before phase 1 trains
      const int64_t n =
          data::batch_count(c.train_set.size(), tl.batch_size * tl.num_shards, tl.drop_last);
      const int64_t limit = spec.trainer.limit_train_batches;
      detail::check_policy_fits(spec, limit > 0 ? std::min(n, limit) : n);
    }
    detail::remove_stale_outputs(spec);  // the data is read and the run set up: it writes now
    return detail::run_phases(c, wall0);
  }

  data::DataLoader train_loader(c.train_set, tl);
  data::DataLoader eval_loader(c.eval_set, el);
  const int64_t steps_per_epoch =
      spec.trainer.limit_train_batches > 0
          ? std::min(train_loader.num_batches(), spec.trainer.limit_train_batches)
          : train_loader.num_batches();
  auto opt = detail::make_run_optimizer(spec, model->named_parameters());
  if (spec.resume.empty() && !spec.finder_only) detail::check_policy_fits(spec, steps_per_epoch);
  detail::remove_stale_outputs(spec);

  // ---- the range test, unless resuming (the checkpoint's policy already holds its rate) ----
  std::optional<double> chosen = spec.fixed_lr;
  std::string policy_text;
  if (!spec.resume.empty()) {
    const std::string dir = resolve_checkpoint(spec.resume);
    const std::string tpath = (fs::path(dir) / "trainer.json").string();
    const json tj = detail::read_json_file(tpath, 64u << 20);
    CYCLONE_CHECK(tj.is_object() && tj.contains("policy"), tpath,
                  ": no 'policy' (not a trainer state)");
    policy_text = tj.at("policy").dump();
    detail::check_checkpoint_policy(tpath, policy_text);
    // A rate given again must be the one the checkpoint trained with: the policy goes on as it
    // was (its clock is in the checkpoint), so another rate would be silently ignored.
    if (chosen) {
      const std::string mine = resolve_policy_json(spec.policy_json, chosen, steps_per_epoch);
      json a;
      try {
        a = json::parse(schedulers::make_policy(mine)->to_json());
      } catch (const Error& e) {
        throw UsageError(e.message());
      }
      const json b = json::parse(policy_text);
      if (a != b)
        throw UsageError(detail::resume_flag(spec) + ": the checkpoint " + dir +
                         " trained with policy " + b.dump() +
                         ", but the rate and policy given now make " + a.dump() +
                         ": resume without changing them, or start a new run");
    }
    log_print("%s: resuming from %s (its policy: %s)\n", prog.c_str(), dir.c_str(),
              policy_text.c_str());
  } else if (spec.finder.enabled) {
    chosen = detail::run_finder(c, *model, *opt, train_loader, c.use_val ? &eval_loader : nullptr,
                                spec.finder, c.log_dir, c.summary, detail::finder_plot_path(spec));
    if (spec.finder_only) {
      c.summary["status"] = "lr_find";
      c.summary["wall_seconds"] = std::chrono::duration<double>(Clock::now() - wall0).count();
      RunOutcome out;
      out.chosen_lr = *chosen;
      detail::write_summary(c, out);
      log_print("%s: range test done (lr_find: true stops here, as microDL does); plot %s\n",
                prog.c_str(), c.summary["lr_finder_plot"].get<std::string>().c_str());
      return out;
    }
  }
  if (policy_text.empty())
    policy_text = resolve_policy_json(spec.policy_json, chosen, steps_per_epoch);
  const int64_t total_steps = steps_per_epoch * spec.trainer.epochs;
  TrainerOptions to = spec.trainer;
  // Before the policy's range is printed and plotted: they show the rates the steps will use. A
  // resumed run's rate is the range test's when the policy names the finder and no rate was
  // given (the checkpoint's policy holds the rate the test found then).
  const bool rate_from_finder = spec.finder.enabled && !spec.fixed_lr &&
                                detail::uses_finder_rate(spec.policy_json, steps_per_epoch);
  detail::apply_lr_scaling(c, to, world.size(), rate_from_finder, steps_per_epoch, c.summary,
                           spec.resume.empty() ? nullptr : &c.previous_summary);
  auto policy = detail::make_run_policy(policy_text, total_steps, prog, &c.summary, &to);
  if (spec.plots) plot_schedule(*policy, total_steps, (c.log_dir / "schedule.svg").string(), &to);
  std::fflush(stdout);

  // ---- training ----
  to.num_classes = info.num_classes;
  to.eval_split = c.use_val ? "val" : "test";
  to.generators = {dropout_gen};
  to.settings = detail::resume_settings(spec);
  if (to.log_dir.empty()) to.log_dir = spec.log_dir;
  if (to.checkpoint_dir.empty()) to.checkpoint_dir = (c.log_dir / "checkpoints").string();
  to.resume_hint = "--resume";
  Trainer trainer(*model, *opt, *policy, train_loader, &eval_loader, to);
  if (spec.model_checkpoint.enabled)
    trainer.on_epoch_end(detail::model_checkpoint_callback(c, *model, !spec.resume.empty()));
  if (!spec.resume.empty()) trainer.resume(spec.resume);
  const FitResult fr = trainer.fit();

  std::optional<EvalResult> final_test;
  if (c.use_val && (fr.status == "completed" || fr.status == "early_stopped")) {
    data::DataLoader test_loader(c.test_set, el);
    final_test = evaluate(*model, test_loader, info.num_classes);
    log_print("%s: test loss %.4f  test accuracy %.2f%%\n", prog.c_str(), final_test->loss,
              100 * final_test->top1);
  }
  if (spec.save_model && fr.status != "diverged" && writes_files()) {
    const std::string path = (c.log_dir / "model.safetensors").string();
    model->save(path);
    c.summary["model_file"] = path;
  }

  json& summary = c.summary;
  summary["chosen_lr"] = chosen ? json(*chosen) : json(nullptr);
  summary["status"] = fr.status;
  if (!fr.message.empty()) summary["message"] = fr.message;
  summary["epochs_run"] = fr.epochs_run;
  summary["steps"] = fr.steps;
  summary["skipped_steps"] = fr.skipped_steps;
  // With a validation split the epochs scored it, and the test set is scored once, at the end.
  const double final_acc = c.use_val ? (final_test ? final_test->top1 : -1) : fr.final_accuracy;
  const double best = fr.best_accuracy;
  summary["final_test_accuracy"] = final_acc >= 0 ? json(final_acc) : json(nullptr);
  summary["best_test_accuracy"] = !c.use_val && best >= 0 ? json(best) : json(nullptr);
  if (c.use_val) summary["best_validation_accuracy"] = best >= 0 ? json(best) : json(nullptr);
  const std::optional<EvalResult>& last_test =
      c.use_val ? final_test : (fr.history.empty() ? final_test : fr.history.back().eval);
  if (last_test && last_test->top5 >= 0) summary["final_test_top5"] = last_test->top5;
  summary["images_per_second"] = fr.images_per_second;
  summary["ensemble"] = eval_json(fr.ensemble);
  summary["snapshots"] = fr.snapshots;
  summary["last_checkpoint"] = fr.last_checkpoint;
  summary["wall_seconds"] = std::chrono::duration<double>(Clock::now() - wall0).count();
  detail::add_total_wall_seconds(summary, previous_summary);
  detail::carry_over_summary(summary, previous_summary);
  RunOutcome out;
  out.chosen_lr = chosen.value_or(0);
  detail::write_summary(c, out);
  if (fr.status == "diverged") {
    log_error("%s: %s\n", prog.c_str(), fr.message.c_str());
    out.exit_code = 1;
  } else if (fr.status == "interrupted") {
    // Ctrl-C / SIGTERM (a scheduler ending the job) is a clean stop: the checkpoint is written.
    log_print("%s: %s\n", prog.c_str(), fr.message.c_str());
    out.exit_code = 0;
  } else {
    if (fr.status == "early_stopped") log_print("%s: %s\n", prog.c_str(), fr.message.c_str());
    log_print("%s: done in %.1f s; summary, logs and plots in %s\n", prog.c_str(),
              summary["wall_seconds"].get<double>(), spec.log_dir.c_str());
  }
  return out;
}

}  // namespace cyclone::train
