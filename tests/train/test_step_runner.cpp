// train/step_runner.h: steps the host does not wait for give the training train_step gives, read
// the device back once per sync_every steps, and stop where train_step would.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "common/test_util.h"
#include "cyclone/models/registry.h"
#include "cyclone/train/step.h"
#include "cyclone/train/step_runner.h"
#include "train_fixture.h"

namespace cyclone::train {
namespace {

using testing::Problem;

std::vector<data::Batch> batches(Problem& p, int64_t n) {
  std::vector<data::Batch> out;
  int64_t epoch = 0;
  while (static_cast<int64_t>(out.size()) < n) {
    p.train->start_epoch(epoch++);
    data::Batch b;
    while (static_cast<int64_t>(out.size()) < n && p.train->next(b)) out.push_back(b);
  }
  return out;
}

void expect_same_weights(Module& a, Module& b, double tol) {
  const NamedTensors sa = a.state_dict(), sb = b.state_dict();
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i)
    EXPECT_TRUE(cyclone::testing::all_close(sa[i].second, sb[i].second, tol, tol)) << sa[i].first;
}

// Two identical problems: one trained with train_step, one with the runner.
struct Pair {
  Problem eager, deferred;
  std::vector<data::Batch> eb, db;
  explicit Pair(int64_t steps) : eb(batches(eager, steps)), db(batches(deferred, steps)) {}
};

TEST(StepRunnerTest, DeferredStepsTrainAsTrainStepDoes) {
  for (double clip : {0.0, 0.05}) {
    SCOPED_TRACE("clip " + std::to_string(clip));
    Pair p(10);
    StepOptions so;
    so.clip_grad_norm = clip;
    so.accuracy = true;
    StepRunnerOptions ro;
    ro.sync_every = 4;
    ro.clip_grad_norm = clip;
    StepRunner runner(*p.deferred.model, *p.deferred.opt, ro);
    std::vector<StepResult> expect;
    std::vector<StepRecord> got;
    for (size_t i = 0; i < p.eb.size(); ++i) {
      const double lr = 0.01 * (1 + static_cast<double>(i));  // a policy changing every step
      p.eager.opt->set_lr(lr);
      expect.push_back(train_step(*p.eager.model, *p.eager.opt, p.eb[i], so));
      p.deferred.opt->set_lr(lr);
      runner.enqueue(p.db[i]);
      if (runner.due() || i + 1 == p.eb.size())
        for (const StepRecord& r : runner.drain()) got.push_back(r);
    }
    ASSERT_EQ(got.size(), expect.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(got[i].loss, expect[i].loss, 1e-6) << "step " << i;
      EXPECT_NEAR(got[i].grad_norm, expect[i].grad_norm, 1e-5) << "step " << i;
      EXPECT_DOUBLE_EQ(got[i].accuracy, expect[i].accuracy) << "step " << i;
      EXPECT_TRUE(got[i].applied);
      EXPECT_FALSE(got[i].halted);
      EXPECT_DOUBLE_EQ(got[i].lr, 0.01 * (1 + static_cast<double>(i)));
      EXPECT_EQ(got[i].samples, p.db[i].size());
    }
    expect_same_weights(*p.eager.model, *p.deferred.model, 1e-6);
    EXPECT_EQ(p.deferred.opt->step_count(), p.eager.opt->step_count());
  }
}

// float16 (Module::compute_dtype): both paths scale the loss, skip the steps whose scaled
// gradients overflow float16, back the scale off and grow it again, with the same decisions.
TEST(StepRunnerTest, Float16LossScalingTrainsAsTrainStepDoes) {
  Pair p(12);
  p.eager.model->set_compute_dtype(DType::kFloat16);
  p.deferred.model->set_compute_dtype(DType::kFloat16);
  kernels::LossScaleConfig ls;
  // 2^20: the first backward overflows float16 (the logits' gradients alone are about
  // scale / batch, float16's largest is 65504); the scale halves until they fit.
  ls.init_scale = 0x1p20;
  ls.growth_interval = 4;
  LossScaler scaler(ls);
  StepOptions so;
  so.loss_scaler = &scaler;
  StepRunnerOptions ro;
  ro.sync_every = 4;
  ro.max_skips = 2;  // overflows above scale 1 must not count
  ro.loss_scale = ls;
  StepRunner runner(*p.deferred.model, *p.deferred.opt, ro);
  std::vector<StepResult> expect;
  std::vector<StepRecord> got;
  for (size_t i = 0; i < p.eb.size(); ++i) {
    expect.push_back(train_step(*p.eager.model, *p.eager.opt, p.eb[i], so));
    runner.enqueue(p.db[i]);
    if (runner.due() || i + 1 == p.eb.size())
      for (const StepRecord& r : runner.drain()) got.push_back(r);
  }
  ASSERT_EQ(got.size(), expect.size());
  int skipped = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE("step " + std::to_string(i));
    EXPECT_EQ(got[i].applied, expect[i].applied);
    EXPECT_EQ(got[i].loss_scale, expect[i].loss_scale);
    EXPECT_FALSE(got[i].halted);
    EXPECT_NEAR(got[i].loss, expect[i].loss, 1e-5);
    if (expect[i].applied) {
      EXPECT_NEAR(got[i].grad_norm, expect[i].grad_norm, 1e-4);
    }
    skipped += expect[i].applied ? 0 : 1;
  }
  EXPECT_GE(skipped, 3) << "2^20 backs off several times before a step applies";
  EXPECT_GE(static_cast<int>(got.size()) - skipped, 4) << "then the steps apply";
  EXPECT_EQ(scaler.overflows(), skipped);
  EXPECT_LT(scaler.scale(), 0x1p20);
  expect_same_weights(*p.eager.model, *p.deferred.model, 1e-5);
}

// float16 with loss scaling trains as float32 does: 30 steps lower the loss as far.
TEST(StepRunnerTest, Float16TrainsLikeFloat32) {
  auto train = [](DType compute) {
    Problem p;
    p.model->set_compute_dtype(compute);
    LossScaler scaler;
    StepOptions so;
    if (compute == DType::kFloat16) so.loss_scaler = &scaler;
    const std::vector<data::Batch> b = batches(p, 30);
    std::vector<double> losses;
    for (const data::Batch& batch : b)
      losses.push_back(train_step(*p.model, *p.opt, batch, so).loss);
    return losses;
  };
  const std::vector<double> f32 = train(DType::kFloat32), f16 = train(DType::kFloat16);
  const double first = f32.front(), last32 = f32.back(), last16 = f16.back();
  EXPECT_NEAR(f16.front(), first, 1e-2 * first);
  EXPECT_LT(last32, 0.8 * first);
  EXPECT_NEAR(last16, last32, 0.1 * first);
}

TEST(StepRunnerTest, ReadsTheDeviceOncePerSyncEvery) {
  Problem p;
  const auto b = batches(p, 12);
  StepRunnerOptions ro;
  ro.sync_every = 4;
  StepRunner runner(*p.model, *p.opt, ro);
  int64_t reads_in_steps = 0, drains = 0;
  for (const data::Batch& batch : b) {
    const int64_t before = host_read_count();
    runner.enqueue(batch);
    reads_in_steps += host_read_count() - before;
    if (runner.due()) {
      const int64_t d0 = host_read_count();
      EXPECT_EQ(runner.drain().size(), 4u);
      EXPECT_EQ(host_read_count() - d0, 1) << "one read-back per drain";
      ++drains;
    }
  }
  EXPECT_EQ(reads_in_steps, 0) << "a step must not wait for the device";
  EXPECT_EQ(drains, 3);
  EXPECT_THROW(
      {
        for (int i = 0; i < 5; ++i) runner.enqueue(b[0]);
      },
      Error)
      << "more than sync_every pending steps";
}

TEST(StepRunnerTest, NonFiniteLossHaltsWithTheLastGoodWeights) {
  Pair p(6);
  // Step 3's images poisoned: its loss is NaN.
  for (auto* v : {&p.eb, &p.db}) {
    data::Batch& bad = (*v)[3];
    bad.images = bad.images.clone();
    std::vector<float> x = bad.images.to_vector<float>();
    x[0] = std::numeric_limits<float>::quiet_NaN();
    bad.images = Tensor::from_vector(x, bad.images.shape());
  }
  StepRunnerOptions ro;
  ro.sync_every = 6;
  StepRunner runner(*p.deferred.model, *p.deferred.opt, ro);
  for (const auto& b : p.db) runner.enqueue(b);
  const auto rec = runner.drain();
  ASSERT_EQ(rec.size(), 6u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(rec[i].applied && !rec[i].halted) << i;
  EXPECT_TRUE(std::isnan(rec[3].loss));
  EXPECT_EQ(rec[3].halt_reason, kernels::kHaltLoss);
  for (int i = 3; i < 6; ++i) EXPECT_TRUE(!rec[i].applied && rec[i].halted) << i;
  EXPECT_TRUE(runner.halted());
  // train_step stops the loop at the NaN: three updates made.
  for (int i = 0; i < 4; ++i) {
    const StepResult s = train_step(*p.eager.model, *p.eager.opt, p.eb[i]);
    if (!std::isfinite(s.loss)) break;
  }
  expect_same_weights(*p.eager.model, *p.deferred.model, 1e-6);
  EXPECT_EQ(p.deferred.opt->step_count(), p.eager.opt->step_count())
      << "gated steps are taken back from the optimizer's count";
}

TEST(StepRunnerTest, GraphsNeedAGpuAndSayWhy) {
  Problem p;
  StepRunner runner(*p.model, *p.opt, StepRunnerOptions{});
  EXPECT_FALSE(runner.graphed());
  EXPECT_NE(runner.graph_status().find("CUDA graphs need a GPU"), std::string::npos)
      << runner.graph_status();
  StepRunnerOptions off;
  off.cuda_graph = false;
  StepRunner eager(*p.model, *p.opt, off);
  EXPECT_NE(eager.graph_status().find("eager"), std::string::npos);
  StepRunnerOptions bad;
  bad.sync_every = 0;
  EXPECT_THROW(StepRunner(*p.model, *p.opt, bad), Error);
}

// On a GPU: the captured step replays the eager step's arithmetic (after the warm-up, every
// step is a replay), dropout excluded (it draws on the host, so the runner refuses the graph).
TEST(StepRunnerCudaTest, GraphReplaysGiveTheEagerTraining) {
  CYCLONE_SKIP_IF_UNAVAILABLE(Device::cuda());
  auto make = [] {
    auto p = std::make_unique<Problem>(1, "sgd", R"({"lr": 0.05, "momentum": 0.9})", 256,
                                       Device::cuda());
    return p;
  };
  auto a = make(), b = make();
  // Dropout off: eval-time dropout is not what this compares; set p through the model options.
  StepRunnerOptions ro;
  ro.sync_every = 5;
  StepRunnerOptions eo = ro;
  eo.cuda_graph = false;
  StepRunner graphed(*b->model, *b->opt, ro), eager(*a->model, *a->opt, eo);
  const auto ba = batches(*a, 15), bb = batches(*b, 15);
  std::vector<StepRecord> ra, rb;
  for (size_t i = 0; i < ba.size(); ++i) {
    eager.enqueue(ba[i]);
    graphed.enqueue(bb[i]);
    if (eager.due()) {
      for (auto& r : eager.drain()) ra.push_back(r);
      for (auto& r : graphed.drain()) rb.push_back(r);
    }
  }
  ASSERT_EQ(ra.size(), rb.size());
  for (size_t i = 0; i < ra.size(); ++i) EXPECT_NEAR(ra[i].loss, rb[i].loss, 1e-5) << i;
  // The fixture's MLP has dropout: the runner must have seen the host draws and stayed eager.
  EXPECT_FALSE(graphed.graphed());
  EXPECT_NE(graphed.graph_status().find("random"), std::string::npos) << graphed.graph_status();
  expect_same_weights(*a->model, *b->model, 1e-5);
}

// LeNet-5 has no dropout: after the warm-up every step of the usual shape is a graph replay, an
// odd-sized batch runs eagerly beside it, and the training is the eager runner's.
// LeNet-5 steps replayed from one CUDA graph against the same steps launched eagerly, in a given
// compute dtype and layout: the same losses, norms, decisions (and, in float16, loss scales: the
// graph reads the scale the device guard writes) and weights.
void lenet_graph_matches_eager(DType compute, bool channels_last) {
  CYCLONE_SKIP_IF_UNAVAILABLE(Device::cuda());
  SCOPED_TRACE(std::string(dtype_name(compute)) + (channels_last ? " channels last" : ""));
  const Device d = Device::cuda();
  auto make_model_on = [&] {
    ModelOptions mo;
    mo.device = d;
    mo.seed = 4;
    mo.in_channels = 1;  // MNIST's shape, as the batches below
    mo.height = mo.width = 28;
    auto m = make_model("lenet5", mo);
    m->set_compute_dtype(compute);
    m->set_channels_last(channels_last);
    return m;
  };
  auto ma = make_model_on(), mb = make_model_on();
  const std::string opt_json = R"({"lr": 0.02, "momentum": 0.9, "weight_decay": 5e-4})";
  auto oa = optim::make_optimizer("sgd", ma->named_parameters(), opt_json);
  auto ob = optim::make_optimizer("sgd", mb->named_parameters(), opt_json);
  std::vector<data::Batch> bs;
  for (int i = 0; i < 14; ++i) {
    const int64_t n = i == 9 ? 7 : 32;  // one odd-sized batch in the middle
    data::Batch b;
    b.images = cyclone::testing::random_tensor({n, 1, 28, 28}, 100 + i, DType::kFloat32, d);
    std::vector<int32_t> y;
    for (int64_t k = 0; k < n; ++k) y.push_back(static_cast<int32_t>((k * 7 + i) % 10));
    b.labels = Tensor::from_vector(y, {n}, d);
    bs.push_back(b);
  }
  StepRunnerOptions ro;
  ro.sync_every = 7;
  ro.clip_grad_norm = 5;
  ro.loss_scale.growth_interval = 3;  // float16: the scale changes within the run
  StepRunnerOptions eo = ro;
  eo.cuda_graph = false;
  StepRunner graphed(*mb, *ob, ro), eager(*ma, *oa, eo);
  std::vector<StepRecord> ra, rb;
  for (size_t i = 0; i < bs.size(); ++i) {
    const double lr = 0.02 + 0.001 * static_cast<double>(i);
    oa->set_lr(lr);
    ob->set_lr(lr);
    eager.enqueue(bs[i]);
    graphed.enqueue(bs[i]);
    if (eager.due()) {
      for (auto& r : eager.drain()) ra.push_back(r);
      for (auto& r : graphed.drain()) rb.push_back(r);
    }
  }
  EXPECT_TRUE(graphed.graphed()) << graphed.graph_status();
  EXPECT_EQ(graphed.captures(), 1) << "the odd batch must not replace the graph";
  ASSERT_EQ(ra.size(), rb.size());
  const double tol = compute == DType::kFloat32 ? 1e-5 : 1e-2;
  for (size_t i = 0; i < ra.size(); ++i) {
    EXPECT_NEAR(rb[i].loss, ra[i].loss, tol * std::max(1.0, std::abs(ra[i].loss))) << i;
    EXPECT_EQ(rb[i].applied, ra[i].applied) << i;
    EXPECT_EQ(rb[i].loss_scale, ra[i].loss_scale) << i;
    if (ra[i].applied) {
      EXPECT_NEAR(rb[i].grad_norm, ra[i].grad_norm, 10 * tol * std::max(1.0, ra[i].grad_norm)) << i;
    }
  }
  if (compute == DType::kFloat16) {
    EXPECT_EQ(ra.front().loss_scale, 65536.0);
  }
  expect_same_weights(*ma, *mb, compute == DType::kFloat32 ? 1e-5 : 1e-3);
}

TEST(StepRunnerCudaTest, LeNetStepsReplayFromOneGraph) {
  lenet_graph_matches_eager(DType::kFloat32, false);
}

TEST(StepRunnerCudaTest, Float16StepsScaleTheLossInTheGraph) {
  lenet_graph_matches_eager(DType::kFloat16, false);
}

TEST(StepRunnerCudaTest, ChannelsLastBfloat16StepsReplayFromOneGraph) {
  lenet_graph_matches_eager(DType::kBFloat16, true);
}

}  // namespace
}  // namespace cyclone::train
