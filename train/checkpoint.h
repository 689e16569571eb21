// Checkpoints: one directory per checkpoint, holding
//   model.safetensors      the weights and buffers (loadable by PyTorch / safetensors)
//   optimizer.safetensors  the optimizer's state tensors, its JSON in the metadata (optim/)
//   trainer.json           where the run is (epoch, batch, step), its random streams, policy,
//                          early-stopping and plateau state, snapshots taken
// written into a hidden temporary directory and renamed into place, then named in the file
// `latest` beside it (itself replaced atomically). A crash at any moment leaves the previous
// checkpoint and `latest` intact: a reader never sees half of one.
#pragma once

#include <string>

#include "cyclone/layers/module.h"
#include "cyclone/optim/optimizer.h"

namespace cyclone::train {

// Writes checkpoint `name` under `parent` (created if missing) and points `parent`/latest at it.
// Returns the checkpoint's path.
std::string write_checkpoint(const std::string& parent, const std::string& name,
                             const Module& model, const optim::Optimizer& optimizer,
                             const std::string& trainer_json);

// A checkpoint directory, or a parent holding `latest`, resolved to the checkpoint directory;
// an Error naming the path and what is missing otherwise.
std::string resolve_checkpoint(const std::string& path);

// The checkpoint name the `latest` file in `parent` gives, line end trimmed; "" when there is no
// such file. An Error naming the file when it cannot be read.
std::string latest_checkpoint_name(const std::string& parent);

// A checkpoint directory (resolve_checkpoint's) that lacks one of its three files, or whose weights
// files' headers do not match their sizes (a truncated copy, a partial download), is damaged: an
// Error naming the file and what to do, before any tensor data is read.
void check_checkpoint_files(const std::string& dir);
// The Error of a damaged checkpoint: "checkpoint DIR is damaged: WHAT; resume from another ...".
[[noreturn]] void throw_damaged_checkpoint(const std::string& dir, const std::string& what);

// Loads weights and optimizer state into `model` / `optimizer` (strict: names, shapes and dtypes
// must match; errors name the file and the tensor) and returns trainer.json's text.
std::string read_checkpoint(const std::string& path, Module& model, optim::Optimizer& optimizer);

// Removes all but the newest `keep` checkpoints named <prefix>* under parent (by name order,
// which is epoch order for zero-padded names), never the one `latest` names.
void prune_checkpoints(const std::string& parent, const std::string& prefix, int keep);
// Removes the checkpoint `name` under parent (e.g. "interrupted", once a resumed run has written a
// later one) unless `latest` names it; nothing when it does not exist.
void remove_superseded_checkpoint(const std::string& parent, const std::string& name);

}  // namespace cyclone::train
