// Training steps that the host does not wait for: the forward, backward, the decisions that used
// to need the loss and the gradient norm on the host (skip a non-finite step, clip, stop on a
// non-finite loss, the range test's divergence rule) and the update all run on the device
// (kernels/step_guard.h gates the optimizer), and the host reads the per-step records back once
// every `sync_every` steps. On a GPU the step is captured once as a CUDA graph and replayed: one
// launch per step instead of hundreds, which is what makes small models fast (DESIGN.md, "Steps
// that can be replayed").
//
// Per step the host only: copies the batch into the step's input buffers (device to device), sets
// the optimizer's rate and momentum (an asynchronous upload of 64 bytes), and launches. What the
// host cannot know until it drains (the records), and how that differs from train_step:
//  - a step skipped on the device (non-finite gradient norm, or a halt) still advanced the host's
//    policy clock; drain() gives the optimizer its step counts back (Optimizer::unstep), but the
//    rates already chosen for the later steps of that window were one step ahead;
//  - after a halt (non-finite loss, max_skips, divergence) the rest of the window is gated off:
//    the weights are those after the last good step, as with train_step, and the records after
//    the halting one say halted.
//
// Graphs are used when the device is CUDA, the runner was asked for them, and the warm-up steps
// showed the step is capturable: no host random numbers drawn (dropout draws from a host counter:
// a replay would repeat its mask), and the capture itself succeeds. Otherwise the steps run eagerly
// (the same device-side logic, without the graph) and graph_status() says why, once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cyclone/core/generator.h"
#include "cyclone/data/loader.h"
#include "cyclone/kernels/step_guard.h"
#include "cyclone/layers/module.h"
#include "cyclone/optim/optimizer.h"

namespace cyclone::train {

// Read-back interval of the losses on a GPU when none is given: long enough that the one host
// wait is negligible beside the steps, short enough for a live progress bar.
inline constexpr int64_t kSyncEveryCuda = 50;

// The read-back interval for steps of `optimizer`'s parameters given a requested sync_every (0:
// kSyncEveryCuda on a GPU, 1 on the CPU), or 0 when the steps should go one by one through
// train_step: a data-parallel job (its collectives decide on the host every step), parameters on
// several devices, or an interval of 1 with no CUDA graph to gain.
int64_t runner_sync_every(const optim::Optimizer& optimizer, int64_t sync_every, bool cuda_graph);

struct StepRunnerOptions {
  int64_t sync_every = 1;     // steps between read-backs (the ring holds this many records)
  bool cuda_graph = true;     // capture the step on CUDA when possible
  int64_t warmup_steps = 2;   // eager steps before a capture (cuDNN search, first allocations)
  double clip_grad_norm = 0;  // > 0: clip the global gradient norm
  double label_smoothing = 0;
  bool accuracy = true;  // count the correct top-1 rows
  // Halting rules (kernels::StepGuardConfig): the trainer halts on a non-finite loss and on
  // max_skips; the range test treats a non-finite loss as a skip and adds its divergence rule.
  bool halt_on_nonfinite_loss = true;
  int64_t max_skips = 0;
  double smooth_beta = 0.98;
  double diverge_th = 0;
  // Dynamic loss scaling of the backward (kernels::LossScaleConfig). On by itself for a model that
  // computes in float16 (Module::compute_dtype), whose small gradients would underflow.
  kernels::LossScaleConfig loss_scale = {};
};

// What the host learns about one step when it drains.
struct StepRecord {
  double loss = 0;
  double grad_norm = 0;
  double accuracy = -1;  // -1 when not counted
  int64_t samples = 0;
  bool applied = false;         // the update was made
  bool halted = false;          // this step or an earlier one halted the run
  int halt_reason = 0;          // kernels::StepGuardHalt, on the step that halted (0 elsewhere)
  double smoothed = 0;          // the smoothed loss after the step (NaN when skipped)
  double loss_scale = 1;        // the scale of the step's backward (float16 loss scaling)
  double lr = 0, momentum = 0;  // what the optimizer was set to for the step
};

class StepRunner {
 public:
  StepRunner(Module& model, optim::Optimizer& optimizer, StepRunnerOptions options);
  ~StepRunner();
  StepRunner(const StepRunner&) = delete;
  StepRunner& operator=(const StepRunner&) = delete;

  // Enqueues one step on `batch` with the optimizer's current rate and momentum. At most
  // sync_every steps may be pending: drain() first when due().
  void enqueue(const data::Batch& batch);
  int64_t pending() const { return static_cast<int64_t>(pending_.size()); }
  int64_t sync_every() const { return options_.sync_every; }
  bool due() const { return pending() >= options_.sync_every; }
  // Waits for the pending steps and returns their records, in order (one host read).
  std::vector<StepRecord> drain();
  // True once a drained record halted.
  bool halted() const { return halted_; }

  // Whether steps are replayed from a CUDA graph now, and why not when they are not ("" while
  // the decision is pending, i.e. during the warm-up steps).
  bool graphed() const;
  // float16 loss scaling: the current scale and its count of good steps, as of the steps run so
  // far (a read of the device state), and setting them (a resumed run); (0, 0) and a no-op
  // without loss scaling.
  std::pair<double, double> loss_scale_state() const;
  void set_loss_scale_state(double scale, double good_steps);
  const std::string& graph_status() const { return graph_status_; }
  int64_t captures() const { return captures_; }

 private:
  void forward_backward(const Tensor& x, const Tensor& y);
  void update();
  void capture();
  uint64_t random_draws() const;

  struct Pending {
    double lr, momentum;
    int64_t samples;
  };
  struct Graph;  // gpu::Graph and the static inputs it reads

  Module& model_;
  optim::Optimizer& opt_;
  StepRunnerOptions options_;
  Device device_;
  kernels::StepGuardConfig guard_;  // from options_, the launch arguments of every step
  Tensor state_, gate_, scale_, correct_;
  Tensor loss_scale_;  // float16 loss scaling: the scale of the next backward (float32 [1])
  Tensor loss_;        // between forward_backward and update
  std::vector<Pending> pending_;
  int64_t recorded_ = 0;  // records drained so far (the ring position of the next one)
  int64_t eager_steps_ = 0;
  bool halted_ = false;
  bool graph_possible_ = false;
  std::string graph_status_;
  int64_t captures_ = 0;
  std::unique_ptr<Graph> graph_;
};

}  // namespace cyclone::train
