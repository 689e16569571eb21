// Data-parallel training's glue between the training loop and dist/: what every rank must share
// (weights at the start, batch-norm statistics before an evaluation) and the gradient reducer a
// step uses. In a world of one (dist::world().distributed() false) every function here is free.
//
// The rules that keep the ranks in step (each rank runs the same loop; a collective called by
// some ranks and not others would hang until the timeout):
//  - a rank reads its own shard of every epoch's global order (data::LoaderOptions::shard);
//  - train_step all-reduces [samples, loss sum, correct, stop request] of the batch before the
//    backward pass, so the loss every rank acts on (a non-finite loss, the range test's divergence
//    check, Ctrl-C on any rank) is the same global number, and the step's gradients are
//    the mean over the global batch (each rank weights its loss by its share of it);
//  - evaluation sums the ranks' shards;
//  - only rank 0 writes files and prints progress (TrainerOptions::write_files).
#pragma once

#include <string>
#include <vector>

#include "cyclone/layers/module.h"
#include "cyclone/optim/optimizer.h"

namespace cyclone::dist {
class GradReducer;
}

namespace cyclone::train {

// Rank 0's parameters and buffers (or only its buffers) on every rank.
void sync_from_root(Module& model, bool buffers_only = false);

// The reducer of the optimizer's parameters (made on first use, remade when they change);
// nullptr in a world of one.
dist::GradReducer* grad_reducer_for(const optim::Optimizer& optimizer);

// Makes every BatchNorm2d of the model synchronized over the ranks (its sums all-reduced on the
// activations' device: NCCL on a GPU, MPI on the CPU); returns how many. Nothing in a world of
// one.
int synchronize_batch_norm(Module& model);

// Whether this process writes files and prints progress: rank 0 of a job (always in a world of
// one). Logs, checkpoints, plots, summaries and saved weights are written by it alone.
bool writes_files();

// The number of ranks in the job (1 in a world of one).
int num_ranks();

// A barrier with no deadline, for work of unbounded length on some ranks (rank 0 fetching a
// dataset) that CYCLONE_DIST_TIMEOUT, a limit for steps, must not cut short: a rank that dies
// still ends the job (mpirun stops the others). A rank still waiting after `note_after_seconds`
// prints the line `note` once (nothing when empty). Free in a world of one.
void barrier_without_deadline(const std::string& note, double note_after_seconds = 5);

// Sums over the ranks of a few host numbers (no-op in a world of one).
void all_reduce_sum(std::vector<double>& values);

}  // namespace cyclone::train
