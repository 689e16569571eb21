// Evaluation: loss and accuracy of a model over a loader, and the averaged predictions of a
// snapshot ensemble (Huang et al. 2017, "Snapshot Ensembles: Train 1, get M for free").
#pragma once

#include <cstdint>
#include <vector>

#include "cyclone/core/tensor.h"
#include "cyclone/data/loader.h"
#include "cyclone/layers/module.h"

namespace cyclone::train {

struct EvalResult {
  double loss = 0;      // mean cross-entropy per sample
  double top1 = 0;      // fraction in [0, 1]
  double top5 = -1;     // -1 where the problem has <= 10 classes (not reported)
  int64_t samples = 0;  // images evaluated
  double seconds = 0;
};

// Runs `model` in eval mode without gradients over the whole of `loader`'s epoch 0 (or its first
// max_batches batches), then restores the model's previous mode. top5 is computed when
// num_classes > 10.
EvalResult evaluate(Module& model, data::DataLoader& loader, int num_classes,
                    int64_t max_batches = 0);

// Softmax probabilities of every sample of loader's epoch 0, [N, num_classes] float32 on the CPU,
// in loader order (an unshuffled loader gives dataset order); [0, 0] when the loader yields no
// sample (a rank's empty shard of a tiny set).
Tensor predict_probabilities(Module& model, data::DataLoader& loader);

// Loss (mean negative log of the probability of the true class, clamped at 1e-12) and accuracy
// of averaged probabilities `probs` [N, C] against int32 labels [N] (both on the CPU).
EvalResult score_probabilities(const Tensor& probs, const Tensor& labels, int num_classes);

// Labels of loader's epoch 0 in loader order, int32 [N] on the CPU.
Tensor loader_labels(data::DataLoader& loader);

// The scores of the ranks' shards of one set as one score: means weighted by each shard's
// samples, samples summed (in a world of one, `shard` itself; top5 as score_probabilities
// reports it). Every rank of a job calls it.
EvalResult combine_shards(const EvalResult& shard, int num_classes);

}  // namespace cyclone::train
