// RunState: where a training run is, everything a checkpoint's trainer.json holds besides the
// weights and the optimizer state: epoch, batch and step (the policy clock), the accumulators of
// the epoch in progress (so a mid-epoch resume reports the same epoch means), early-stopping and
// plateau state, the snapshots taken, and the random streams.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cyclone/schedulers/plateau.h"

namespace cyclone::train {

struct RunState {
  int64_t epoch = 0;  // the epoch being trained (0-based)
  int64_t batch = 0;  // batches of it already consumed
  int64_t step = 0;   // successful updates: the policy clock
  int64_t skipped = 0;
  double epoch_loss_sum = 0, epoch_acc_sum = 0;
  int64_t epoch_samples = 0, epoch_updates = 0;
  double epoch_train_seconds = 0;
  double train_seconds = 0;  // all epochs, for images/s
  int64_t train_images = 0;
  // The best early-stopping value so far, signed so that larger is better (NaN: none yet).
  double best_accuracy = std::numeric_limits<double>::quiet_NaN();
  int64_t bad_epochs = 0;
  std::optional<schedulers::PlateauState> plateau = {};
  std::vector<std::string> snapshots = {};
  std::vector<std::pair<uint64_t, uint64_t>> rngs = {};  // (seed, offset): default generator first
  std::string policy = {};                               // the policy's JSON, canonical form
  // Batches per epoch of the run (its batch size, data split and limit_train_batches): a resume
  // with another count would put the policy clock and the epochs out of step. 0: not recorded.
  int64_t batches_per_epoch = 0;
  // Ranks of the data-parallel job that wrote it (1 alone): they make the global batch, the data's
  // shards and the rates' scaling. 0: not recorded.
  int64_t ranks = 0;
  // float16 training's dynamic loss scale and its count of good steps (kernels::loss_scale_update)
  // so that a resumed run goes on with the scale it had; 0: none (not float16, or an older file).
  double loss_scale = 0, loss_scale_good_steps = 0;
  // The settings the run was started with (TrainerOptions::settings, a JSON object), for a resume
  // to be checked against; "": not recorded.
  std::string settings = {};
};

// trainer.json ("format": "cyclone.trainer/1"), with the policy that drives the run.
std::string run_state_to_json(const RunState& s, const std::string& policy_json, int64_t epochs);
// Parses and checks trainer.json; errors name `origin` and the field.
RunState run_state_from_json(const std::string& text, const std::string& origin);
// The JSON text in one canonical form (sorted keys, one line), for comparing policies.
std::string canonical_json(const std::string& text);

}  // namespace cyclone::train
