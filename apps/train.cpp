// train: any model x optimizer x policy x phases from a YAML or JSON config in microDL's layout
// (train/run_config.h documents it), with microDL's command line.
//
//   ./bin/train --config configs/microdl_clr.yml [--gpu ID] [--gpu_mem_frac X]
//               [--model_fname W [--partial]] [--resume CKPT]
//               [--device cpu] [--log_dir DIR] [--epochs N] [--seed N] [--limit_train_batches N]
//               [--limit_eval_batches N] [--no_download]
//
// Exit codes: 0 success, 1 runtime error (data, memory, divergence), 2 usage error (unknown flag,
// bad config); Ctrl-C or SIGTERM writes a checkpoint, says where, and exits 0.
#include <cstdio>
#include <filesystem>
#include <utility>

#include "cyclone/core/device.h"
#include "cyclone/core/progress.h"
#include "cyclone/train/cli.h"
#include "cyclone/train/run_config.h"
#include "cyclone/train/startup.h"

int main(int argc, char** argv) {
  using namespace cyclone::train;
  namespace fs = std::filesystem;
  prepare_for_limits("train");
  exit_if_blas_cannot_run("train", /*multiplies=*/true);
  return run_program("train", [&] {
    std::string config, resume, device, log_dir, model_fname;
    int64_t epochs = 0, seed = -1, limit = -1, limit_eval = -1, gpu = -1;
    double gpu_mem_frac = 1;
    bool summary = false, no_download = false, partial = false;
    ArgParser p("train",
                "Trains any model x optimizer x policy x phases described by a YAML or JSON "
                "config (microDL's layout: dataset, network, trainer).");
    p.add_flag("config", &config, "the run's .yml or .json file (see configs/)", "FILE");
    p.add_flag("gpu", &gpu, "the GPU to run on, by index (instead of the config's device)", "ID");
    p.add_flag("gpu_mem_frac", &gpu_mem_frac,
               "cap the engine's GPU memory pool at this fraction of the device (0-1]", "X");
    p.add_flag("model_fname", &model_fname,
               "start from these weights (safetensors; tensors matched by name and shape)", "W");
    p.add_flag("partial", &partial,
               "with --model_fname: load what fits and list what was skipped (a new head)");
    p.add_flag("resume", &resume, "continue from a checkpoint (a directory or its parent)", "DIR");
    p.add_flag("device", &device, "override the config's device: auto | cpu | cuda[:N]", "DEV");
    p.add_flag("log_dir", &log_dir, "override trainer.model_dir (where the run writes)", "DIR");
    p.add_flag("epochs", &epochs, "override trainer.max_epochs (not with trainer.phases)", "N");
    p.add_flag("seed", &seed, "override dataset.random_seed", "N");
    p.add_flag("limit_train_batches", &limit,
               "smoke runs: at most N batches per epoch, range tests of at most 10 N steps", "N");
    p.add_flag("limit_eval_batches", &limit_eval,
               "smoke runs: score only the first N batches of the validation and test sets", "N");
    p.add_flag("summary", &summary, "print the model summary and exit");
    p.add_flag("no_download", &no_download, "never download a missing dataset (fail instead)");
    reject_positional("train", p.parse(argc, argv));
    if (p.help_requested()) {
      std::printf("%s", p.help().c_str());
      return 0;
    }
    // An empty value (--log_dir= or --log_dir "") would be taken as not given: the config's
    // folder would be written instead of the one the user meant.
    const std::pair<const char*, const std::string*> strings[] = {{"config", &config},
                                                                  {"resume", &resume},
                                                                  {"device", &device},
                                                                  {"log_dir", &log_dir},
                                                                  {"model_fname", &model_fname}};
    for (const auto& [flag, value] : strings)
      if (p.was_set(flag) && value->empty())
        throw UsageError(
            std::string("--") + flag + " is empty: give a value" +
            (value == &config ? " (the run's .yml or .json file)" : " or leave the flag out"));
    if (config.empty()) throw UsageError("--config FILE is required");
    RunSpec spec = load_run_config(config);
    if (p.was_set("gpu")) {
      if (p.was_set("device"))
        throw UsageError("--gpu and --device both choose the device; give one");
      if (gpu < 0) throw UsageError("--gpu " + std::to_string(gpu) + " must be >= 0");
      const int n = cyclone::cuda_device_count();
      if (n == 0)
        throw UsageError("--gpu " + std::to_string(gpu) +
                         ": this machine has no usable GPU (run on the CPU with --device cpu)");
      if (gpu >= n)
        throw UsageError("--gpu " + std::to_string(gpu) + ": this machine has " +
                         std::to_string(n) + " GPU" + (n == 1 ? "" : "s") + " (0.." +
                         std::to_string(n - 1) + ")");
      spec.device = "cuda:" + std::to_string(gpu);
    }
    if (p.was_set("gpu_mem_frac")) {
      if (!(gpu_mem_frac > 0 && gpu_mem_frac <= 1))
        throw UsageError("--gpu_mem_frac " + cyclone::format_double("%g", gpu_mem_frac) +
                         " must be in (0, 1]");
      spec.gpu_mem_frac = gpu_mem_frac;
    }
    if (!model_fname.empty()) spec.model_fname = model_fname;
    if (partial) {
      if (spec.model_fname.empty()) throw UsageError("--partial needs --model_fname");
      spec.partial = true;
    }
    if (!device.empty()) spec.device = device;
    if (!log_dir.empty()) {
      spec.log_dir = log_dir;
      if (spec.resume_in_log_dir) spec.resume = (fs::path(log_dir) / "checkpoints").string();
    }
    if (!resume.empty()) {
      spec.resume = resume;
      spec.resume_in_log_dir = false;
    }
    if (p.was_set("epochs")) {
      if (epochs < 1) throw UsageError("--epochs must be >= 1");
      if (!spec.phases.empty())
        throw UsageError("--epochs: " + config +
                         " has trainer.phases, which give their own epochs; set each phase's "
                         "epochs in the config (trainer.phases[i].epochs)");
      spec.trainer.epochs = epochs;
    }
    if (p.was_set("seed")) {
      if (seed < 0) throw UsageError("--seed must be >= 0");
      spec.seed = static_cast<uint64_t>(seed);
    }
    if (p.was_set("limit_train_batches")) {
      if (limit < 0) throw UsageError("--limit_train_batches must be >= 0");
      spec.trainer.limit_train_batches = limit;
    }
    if (p.was_set("limit_eval_batches")) {
      if (limit_eval < 0) throw UsageError("--limit_eval_batches must be >= 0");
      spec.limit_eval_batches = limit_eval;
    }
    spec.summary_only = summary;
    if (no_download) spec.download = false;
    return run_experiment(spec).exit_code;
  });
}
