#include "cyclone/train/metrics.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "cyclone/core/autograd.h"
#include "cyclone/layers/loss_ops.h"
#include "cyclone/train/distributed.h"

namespace cyclone::train {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Puts the model in eval mode for a scope, restoring its mode after (also on an exception).
class EvalMode {
 public:
  explicit EvalMode(Module& m) : m_(m), was_training_(m.is_training()) { m.eval(); }
  ~EvalMode() { m_.train(was_training_); }

 private:
  Module& m_;
  bool was_training_;
};

}  // namespace

EvalResult evaluate(Module& model, data::DataLoader& loader, int num_classes, int64_t max_batches) {
  const auto t0 = std::chrono::steady_clock::now();
  EvalMode mode(model);
  autograd::NoGradGuard no_grad;
  // In a data-parallel job each rank scores its shard of the set with rank 0's batch-norm
  // statistics, and the sums are added up.
  sync_from_root(model, /*buffers_only=*/true);
  loader.start_epoch(0);
  EvalResult r;
  double loss_sum = 0, top1_sum = 0, top5_sum = 0;
  data::Batch batch;
  int64_t batches = 0;
  while ((max_batches <= 0 || batches < max_batches) && loader.next(batch)) {
    ++batches;
    if (batch.size() == 0) continue;  // a shard's share of a last, tiny global batch
    const Tensor logits = model(batch.images);
    const double n = static_cast<double>(batch.size());
    loss_sum += cross_entropy(logits, batch.labels).item() * n;
    top1_sum += accuracy_topk(logits, batch.labels, 1) * n;
    if (num_classes > 10) top5_sum += accuracy_topk(logits, batch.labels, 5) * n;
    r.samples += batch.size();
  }
  std::vector<double> sums = {loss_sum, top1_sum, top5_sum, static_cast<double>(r.samples)};
  all_reduce_sum(sums);
  loss_sum = sums[0];
  top1_sum = sums[1];
  top5_sum = sums[2];
  r.samples = static_cast<int64_t>(sums[3]);
  if (r.samples > 0) {
    r.loss = loss_sum / r.samples;
    r.top1 = top1_sum / r.samples;
    if (num_classes > 10) r.top5 = top5_sum / r.samples;
  }
  r.seconds = seconds_since(t0);
  return r;
}

Tensor predict_probabilities(Module& model, data::DataLoader& loader) {
  EvalMode mode(model);
  autograd::NoGradGuard no_grad;
  loader.start_epoch(0);
  std::vector<float> all;
  int64_t classes = 0;
  data::Batch batch;
  while (loader.next(batch)) {
    if (batch.size() == 0) continue;
    const Tensor p = softmax(model(batch.images));
    classes = p.dim(1);
    const std::vector<float> v = p.to_vector<float>();
    all.insert(all.end(), v.begin(), v.end());
  }
  const int64_t n = classes > 0 ? static_cast<int64_t>(all.size()) / classes : 0;
  return Tensor::from_vector(all, {n, classes}, Device::cpu());
}

Tensor loader_labels(data::DataLoader& loader) {
  loader.start_epoch(0);
  std::vector<int32_t> all;
  data::Batch batch;
  while (loader.next(batch)) {
    const std::vector<int32_t> v = batch.labels.to_vector<int32_t>();
    all.insert(all.end(), v.begin(), v.end());
  }
  return Tensor::from_vector(all, {static_cast<int64_t>(all.size())}, Device::cpu());
}

EvalResult combine_shards(const EvalResult& shard, int num_classes) {
  if (num_ranks() == 1) return shard;
  const double n = static_cast<double>(shard.samples);
  std::vector<double> sums = {shard.loss * n, shard.top1 * n, shard.top5 * n, n};
  all_reduce_sum(sums);
  EvalResult r = shard;
  r.samples = static_cast<int64_t>(sums[3]);
  if (r.samples > 0) {
    r.loss = sums[0] / sums[3];
    r.top1 = sums[1] / sums[3];
    if (num_classes > 10) r.top5 = sums[2] / sums[3];
  }
  return r;
}

EvalResult score_probabilities(const Tensor& probs, const Tensor& labels, int num_classes) {
  CYCLONE_CHECK(probs.rank() == 2 && labels.rank() == 1 && probs.dim(0) == labels.dim(0),
                "score_probabilities: ", shapes_str({{"probs", &probs}, {"labels", &labels}}));
  const int64_t n = probs.dim(0), c = probs.dim(1);
  const std::vector<float> p = probs.to_vector<float>();
  const std::vector<int32_t> y = labels.to_vector<int32_t>();
  EvalResult r;
  double loss = 0;
  int64_t top1 = 0, top5 = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = p.data() + i * c;
    const int32_t label = y[i];
    CYCLONE_CHECK(label >= 0 && label < c, "score_probabilities: label ", label, " at ", i,
                  " outside [0, ", c, ")");
    loss -= std::log(std::max<double>(row[label], 1e-12));
    // Rank of the true class: how many classes score strictly higher (ties favour the label, as
    // accuracy_topk's first-index rule would only for the lower index; the difference is moot
    // for averaged probabilities).
    int64_t higher = 0;
    for (int64_t j = 0; j < c; ++j) higher += row[j] > row[label];
    top1 += higher < 1;
    top5 += higher < 5;
  }
  r.samples = n;
  if (n > 0) {
    r.loss = loss / n;
    r.top1 = static_cast<double>(top1) / n;
    if (num_classes > 10) r.top5 = static_cast<double>(top5) / n;
  }
  return r;
}

}  // namespace cyclone::train
