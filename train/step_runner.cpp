#include "cyclone/train/step_runner.h"

#include <cmath>
#include <limits>

#include "cyclone/core/autograd.h"
#include "cyclone/core/cuda/graph.h"
#include "cyclone/kernels/elementwise.h"
#include "cyclone/kernels/softmax.h"
#include "cyclone/layers/loss_ops.h"
#include "cyclone/train/distributed.h"
#include "cyclone/train/grad_utils.h"
#include "cyclone/train/step.h"

namespace cyclone::train {

struct StepRunner::Graph {
  gpu::Graph graph;
  Tensor x, y;  // the inputs the captured step reads; each batch is copied into them
  uint64_t plan_generation = 0;
};

int64_t runner_sync_every(const optim::Optimizer& opt, int64_t sync_every, bool cuda_graph) {
  if (grad_reducer_for(opt) != nullptr || opt.params().empty()) return 0;
  const Device dev = opt.params().front().second.device();
  for (const auto& [name, p] : opt.params())
    if (p.device() != dev) return 0;
  const int64_t every = sync_every > 0 ? sync_every : (dev.is_cuda() ? kSyncEveryCuda : 1);
  return every > 1 || (cuda_graph && dev.is_cuda()) ? every : 0;
}

StepRunner::StepRunner(Module& model, optim::Optimizer& optimizer, StepRunnerOptions options)
    : model_(model), opt_(optimizer), options_(std::move(options)) {
  CYCLONE_CHECK(options_.sync_every >= 1 && options_.sync_every <= (int64_t{1} << 20),
                "step runner: sync_every ", options_.sync_every, " outside [1, 2^20]");
  CYCLONE_CHECK(!opt_.params().empty(), "step runner: the optimizer has no parameters");
  check_optimizer_fits_model(model_, opt_, "step runner");
  device_ = opt_.params().front().second.device();
  for (const auto& [name, p] : opt_.params())
    CYCLONE_CHECK(p.device() == device_, "step runner: parameter '", name, "' is on ", p.device(),
                  ", the first on ", device_, " (one device per step)");
  guard_.clip_norm = options_.clip_grad_norm;
  guard_.smooth_beta = options_.smooth_beta;
  guard_.diverge_th = options_.diverge_th;
  guard_.max_skips = options_.max_skips;
  guard_.halt_on_nonfinite_loss = options_.halt_on_nonfinite_loss;
  guard_.window = options_.sync_every;
  guard_.loss_scaling = model_.compute_dtype() == DType::kFloat16;
  guard_.loss_scale = options_.loss_scale;
  if (guard_.loss_scaling) {
    loss_scale_ = Tensor::empty({1}, DType::kFloat32, device_);
    kernels::fill(Context::current(device_), loss_scale_, options_.loss_scale.init_scale);
  }
  state_ = kernels::step_guard_state(options_.sync_every, device_);
  gate_ = Tensor::zeros({1}, DType::kFloat32, device_);
  scale_ = Tensor::zeros({1}, DType::kFloat32, device_);
  if (options_.accuracy) correct_ = Tensor::zeros({1}, DType::kInt32, device_);
  graph_possible_ = options_.cuda_graph && device_.is_cuda();
  if (!options_.cuda_graph)
    graph_status_ = "off (asked for eager steps)";
  else if (!device_.is_cuda())
    graph_status_ = "off (" + device_.str() + ": CUDA graphs need a GPU)";
}

StepRunner::~StepRunner() = default;

bool StepRunner::graphed() const { return graph_ && graph_->graph.ready(); }

std::pair<double, double> StepRunner::loss_scale_state() const {
  if (!guard_.loss_scaling) return {0, 0};
  const std::vector<double> h =
      state_.slice(kernels::kGuardLossScale, kernels::kGuardGoodSteps + 1).to_vector<double>();
  // 0: no step yet; the first one starts from init_scale.
  return {h[0] > 0 ? h[0] : guard_.loss_scale.init_scale, h[1]};
}

void StepRunner::set_loss_scale_state(double scale, double good_steps) {
  if (!guard_.loss_scaling) return;
  CYCLONE_CHECK(std::isfinite(scale) && scale > 0 && good_steps >= 0, "step runner: loss scale ",
                scale, " (good steps ", good_steps, ")");
  const double h[2] = {scale, good_steps};
  state_.slice(kernels::kGuardLossScale, kernels::kGuardGoodSteps + 1)
      .copy_from(Tensor::from_host(h, {2}, DType::kFloat64, Device::cpu()));
  kernels::fill(Context::current(device_), loss_scale_, scale);
}

uint64_t StepRunner::random_draws() const { return thread_random_reservations(); }

// Everything one step does on the device, in two halves so that an eager step can call the
// optimizer's host bookkeeping (prepare_step) between them, after the backward pass has made the
// gradients, as train_step does. Nothing here reads a value back to the host, so the two halves
// together can be captured.
void StepRunner::forward_backward(const Tensor& x, const Tensor& y) {
  Context& ctx = Context::current(device_);
  opt_.zero_grad();  // in place: the gradients' storage (and the optimizer's tables) stay
  const Tensor logits = model_(x);
  const Tensor loss = cross_entropy(logits, y, options_.label_smoothing);
  if (options_.accuracy) kernels::topk_correct(ctx, logits.detach(), y, 1, correct_);
  // Loss scaling: the backward starts from the device's current scale (read by the graph; a
  // copy, so no gradient accumulation can ever write into the scale).
  if (guard_.loss_scaling)
    loss.backward(loss_scale_.reshape(loss.shape()).clone());
  else
    loss.backward();
  loss_ = loss.detach();
}

void StepRunner::update() {
  Context& ctx = Context::current(device_);
  const Tensor sq = grad_sq_sum(opt_.params());
  kernels::step_guard(ctx, guard_, loss_, sq, correct_, state_, gate_, scale_, loss_scale_);
  loss_ = Tensor();
  // scale_ unscales (loss scaling) and clips.
  if (options_.clip_grad_norm > 0 || guard_.loss_scaling) scale_grads(opt_.params(), scale_);
  opt_.launch_step(gate_);
}

void StepRunner::enqueue(const data::Batch& batch) {
  CYCLONE_CHECK(pending() < options_.sync_every, "step runner: ", pending(),
                " steps pending, sync_every is ", options_.sync_every, ": drain() first");
  CYCLONE_CHECK(batch.size() > 0, "step runner: an empty batch");
  CYCLONE_CHECK(batch.images.device() == device_ && batch.labels.device() == device_,
                "step runner: the batch is on ", batch.images.device(), ", the model on ", device_);
  pending_.push_back({opt_.lr(), opt_.momentum(), batch.size()});

  const bool same_shape = graph_ && graph_->x.shape() == batch.images.shape() &&
                          graph_->y.shape() == batch.labels.shape();
  if (graphed() && same_shape) {
    opt_.prepare_step();  // host bookkeeping and the scalars' upload, outside the graph
    if (graph_->plan_generation != opt_.plan_generation()) capture();  // new tables
    if (graphed()) {
      graph_->x.copy_from(batch.images);
      graph_->y.copy_from(batch.labels);
      graph_->graph.replay();
    } else {  // the new capture failed (graph_status says why): this step runs eagerly
      forward_backward(batch.images, batch.labels);
      update();
    }
    return;
  }
  // Eager: the warm-up, a batch of another shape (an epoch's last), or no graph at all.
  const uint64_t draws = random_draws();
  forward_backward(batch.images, batch.labels);
  opt_.prepare_step();
  update();
  ++eager_steps_;
  if (!graph_possible_) return;
  if (random_draws() != draws) {
    graph_possible_ = false;
    graph_.reset();
    graph_status_ =
        "off (the model draws random numbers on the host, e.g. dropout: a replayed graph would "
        "repeat its mask)";
    return;
  }
  if (eager_steps_ < options_.warmup_steps) return;
  if (graph_ && !same_shape) return;  // keep the graph of the usual batch shape
  // Capture the step for the next batches of this shape: the inputs it will read are allocated
  // now, outside the graph's pool, and outlive it.
  graph_ = std::make_unique<Graph>();
  graph_->x = Tensor::empty(batch.images.shape(), batch.images.dtype(), device_);
  graph_->y = Tensor::empty(batch.labels.shape(), batch.labels.dtype(), device_);
  capture();
}

// Records one step's launches (without running them) into graph_, replayed from the next enqueue
// on; the optimizer's tables are those of its last prepare_step.
void StepRunner::capture() {
  graph_->plan_generation = opt_.plan_generation();
  const std::string reason = graph_->graph.capture(Context::current(device_), [&] {
    forward_backward(graph_->x, graph_->y);
    update();
  });
  ++captures_;
  if (!reason.empty()) {
    graph_possible_ = false;
    graph_.reset();
    graph_status_ = "off (capture failed: " + reason + ")";
    return;
  }
  graph_status_ = "on (" + std::to_string(graph_->graph.nodes()) + " nodes per step)";
}

std::vector<StepRecord> StepRunner::drain() {
  std::vector<StepRecord> out;
  if (pending_.empty()) return out;
  const std::vector<double> s = state_.to_vector<double>();  // the one host wait
  const int64_t window = options_.sync_every;
  const auto count = static_cast<int64_t>(s[kernels::kGuardCount]);
  CYCLONE_CHECK(count == recorded_ + pending(), "step runner: the device recorded ",
                count - recorded_, " steps, ", pending(), " were enqueued");
  const int64_t halt_step =
      s[kernels::kGuardHalted] != 0 ? static_cast<int64_t>(s[kernels::kGuardHaltStep]) : -1;
  int64_t skipped = 0;
  for (size_t i = 0; i < pending_.size(); ++i) {
    const int64_t k = recorded_ + static_cast<int64_t>(i);
    const double* slot =
        s.data() + kernels::kStepGuardHeader + (k % window) * kernels::kStepGuardFields;
    StepRecord r;
    r.loss = slot[kernels::kGuardLoss];
    r.grad_norm = slot[kernels::kGuardNorm];
    r.samples = pending_[i].samples;
    r.accuracy = options_.accuracy ? slot[kernels::kGuardCorrect] / r.samples : -1;
    r.applied = slot[kernels::kGuardGate] != 0;
    r.smoothed = slot[kernels::kGuardSmoothed];
    r.loss_scale = slot[kernels::kGuardScaleUsed];
    r.halted = halt_step >= 0 && k >= halt_step;
    if (k == halt_step) r.halt_reason = static_cast<int>(s[kernels::kGuardReason]);
    r.lr = pending_[i].lr;
    r.momentum = pending_[i].momentum;
    if (!r.applied) ++skipped;
    out.push_back(r);
  }
  opt_.unstep(skipped);
  recorded_ = count;
  pending_.clear();
  halted_ = halt_step >= 0;
  return out;
}

}  // namespace cyclone::train
