// train: any model x optimizer x policy from a JSON config (train/run_config.h documents it).
//
//   ./bin/train --config configs/clr_triangular.json [--resume logs/run/checkpoints]
//               [--device cuda] [--log_dir DIR] [--epochs N] [--seed N] [--limit_train_batches N]
//               [--no_download]
//
// Exit codes: 0 success, 1 runtime error (data, memory, divergence), 2 usage error (unknown flag,
// bad config), 130 Ctrl-C (after writing a checkpoint).
#include <cstdio>

#include "cyclone/train/cli.h"
#include "cyclone/train/run_config.h"

int main(int argc, char** argv) {
  using namespace cyclone::train;
  return run_program("train", [&] {
    std::string config, resume, device, log_dir;
    int64_t epochs = 0, seed = -1, limit = -1;
    bool summary = false, no_download = false;
    ArgParser p("train", "Trains any model x optimizer x policy described by a JSON config.");
    p.add_flag("config", &config, "the run's JSON file (see configs/)", "FILE");
    p.add_flag("resume", &resume, "continue from a checkpoint (a directory or its parent)", "DIR");
    p.add_flag("device", &device, "override the config's device: auto | cpu | cuda[:N]", "DEV");
    p.add_flag("log_dir", &log_dir, "override the config's log_dir", "DIR");
    p.add_flag("epochs", &epochs, "override trainer.epochs", "N");
    p.add_flag("seed", &seed, "override the config's seed", "N");
    p.add_flag("limit_train_batches", &limit, "override trainer.limit_train_batches (smoke runs)",
               "N");
    p.add_flag("summary", &summary, "print the model summary and exit");
    p.add_flag("no_download", &no_download, "never download a missing dataset (fail instead)");
    if (!p.parse(argc, argv).empty())
      throw UsageError("unexpected argument (flags only; see --help)");
    if (p.help_requested()) {
      std::printf("%s", p.help().c_str());
      return 0;
    }
    if (config.empty()) throw UsageError("--config FILE is required");
    RunSpec spec = load_run_config(config);
    if (!resume.empty()) spec.resume = resume;
    if (!device.empty()) spec.device = device;
    if (!log_dir.empty()) spec.log_dir = log_dir;
    if (p.was_set("epochs")) {
      if (epochs < 1) throw UsageError("--epochs must be >= 1");
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
    spec.summary_only = summary;
    if (no_download) spec.download = false;
    return run_experiment(spec).exit_code;
  });
}
