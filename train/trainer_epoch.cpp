// The end of Trainer::fit()'s epochs, and the snapshot ensemble's score after the last.
#include <cstdio>
#include <string>
#include <vector>

#include "cyclone/core/autograd.h"
#include "cyclone/train/interrupt.h"
#include "cyclone/train/log.h"
#include "cyclone/train/trainer_detail.h"

namespace cyclone::train {

namespace {
constexpr double kNoScore = std::numeric_limits<double>::quiet_NaN();
}  // namespace

bool Trainer::Impl::finish_epoch(FitResult& r, Logs& logs, std::optional<ProgressBar>& bar) {
  const bool silent = o.progress_mode == -2;
  EpochStats es;
  es.epoch = st.epoch + 1;
  es.step = st.step;
  es.train_loss = st.epoch_samples ? st.epoch_loss_sum / st.epoch_samples : kNoScore;
  es.train_accuracy = st.epoch_samples ? st.epoch_acc_sum / st.epoch_samples : kNoScore;
  es.lr = opt.lr();
  es.momentum = opt.momentum();
  es.seconds = st.epoch_train_seconds;
  es.images_per_second = es.seconds > 0 ? st.epoch_samples / es.seconds : 0;
  st.train_seconds += st.epoch_train_seconds;
  st.train_images += st.epoch_samples;
  if (eval) {
    es.eval = evaluate(model, *eval, o.num_classes);
    train_mode();
    r.final_accuracy = es.eval->top1;
  }
  // A signal during the evaluation (after the epoch's last step) stops the run at this epoch's
  // end; the ranks of a job agree on it, as train_step's do.
  std::vector<double> signalled = {interrupt_requested() ? 1.0 : 0.0};
  all_reduce_sum(signalled);
  const bool stop_after_epoch = signalled[0] > 0;
  if (stop_after_epoch) r.stop_requested = true;
  if (plateau)
    st.plateau = plateau->report(*st.plateau,
                                 es.eval && o.eval_split == "val" ? es.eval->loss : es.train_loss);
  std::string line = "epoch " + std::to_string(es.epoch) + "/" + std::to_string(o.epochs) +
                     "  train loss " + format_double("%.4f", es.train_loss) + " acc " +
                     format_double("%.2f%%", 100 * es.train_accuracy);
  if (es.eval) {
    line += "  " + o.eval_split + " loss " + format_double("%.4f", es.eval->loss) + " acc " +
            format_double("%.2f%%", 100 * es.eval->top1);
    if (es.eval->top5 >= 0) line += " top5 " + format_double("%.2f%%", 100 * es.eval->top5);
  }
  line += "  lr " + format_double("%.4g", es.lr) + "  " + format_rate(es.images_per_second) +
          " img/s  " + format_duration(es.seconds);
  if (bar) {
    bar->finish(line);
    log_to_file(line);
  } else if (!silent) {
    log_print("%s\n", line.c_str());
  }
  const double wall = st.train_seconds;
  if (logs.epoch) {
    const EvalResult ev = es.eval.value_or(EvalResult{kNoScore, kNoScore, kNoScore, 0, 0});
    logs.epoch->row({double(es.epoch), double(es.step), es.train_loss, es.train_accuracy, ev.loss,
                     ev.top1, ev.top5 >= 0 ? ev.top5 : kNoScore, es.lr, es.momentum,
                     es.images_per_second, es.seconds, wall});
    logs.epoch->flush();
  }
  if (logs.step) logs.step->flush();
  if (logs.tb) {
    std::vector<std::pair<std::string, double>> v = {
        {"epoch/train_loss", es.train_loss},
        {"epoch/train_accuracy", es.train_accuracy},
        {"epoch/lr", es.lr},
        {"epoch/images_per_second", es.images_per_second}};
    if (es.eval) {
      v.push_back({o.eval_split + "/loss", es.eval->loss});
      v.push_back({o.eval_split + "/accuracy", es.eval->top1});
      if (es.eval->top5 >= 0) v.push_back({o.eval_split + "/top5", es.eval->top5});
    }
    logs.tb->add_scalars(es.step, v);
    logs.tb->flush();
  }
  r.history.push_back(es);
  if (on_epoch_end_cb) on_epoch_end_cb(es);

  // Early stopping on the monitored value (signed so that larger is better).
  const double metric = (monitor_maximizes(o.early_stop_monitor, o.early_stop_mode) ? 1 : -1) *
                        monitored_value(es, o.early_stop_monitor);
  bool stop_early = false;
  if (std::isnan(st.best_accuracy) || metric > st.best_accuracy + o.early_stop_min_delta) {
    if (!std::isnan(metric))
      st.best_accuracy = std::isnan(st.best_accuracy) ? metric : std::max(st.best_accuracy, metric);
    st.bad_epochs = 0;
  } else if (o.early_stop_patience > 0 && ++st.bad_epochs >= o.early_stop_patience) {
    stop_early = true;
  }
  if (es.eval) r.best_accuracy = std::max(r.best_accuracy, es.eval->top1);

  // The next epoch starts clean; the checkpoint written now resumes there.
  st.batch = 0;
  st.epoch_loss_sum = st.epoch_acc_sum = 0;
  st.epoch_samples = st.epoch_updates = 0;
  st.epoch_train_seconds = 0;
  const bool last = st.epoch + 1 == o.epochs || stop_early;
  if (!o.checkpoint_dir.empty() &&
      (last || stop_after_epoch ||
       (o.checkpoint_every > 0 && (st.epoch + 1) % o.checkpoint_every == 0))) {
    ++st.epoch;  // the state to resume from is "at the start of the next epoch"
    char name[32];
    std::snprintf(name, sizeof name, "epoch-%04lld", static_cast<long long>(st.epoch));
    r.last_checkpoint = save(name);
    if (writer) {
      prune_checkpoints(o.checkpoint_dir, "epoch-", o.keep_checkpoints);
      // An interrupt's checkpoint that a resumed run has now gone past: superseded by this one
      // (a whole model and optimizer state otherwise kept for good).
      remove_superseded_checkpoint(o.checkpoint_dir, "interrupted");
    }
    --st.epoch;
  }
  r.epochs_run = es.epoch;
  // Interrupted after the last epoch, only a snapshot ensemble's scoring is left to skip.
  if (stop_after_epoch && !stop_early && (!last || o.snapshot_ensemble)) {
    r.status = "interrupted";
    r.message = "interrupted after epoch " + std::to_string(es.epoch) + " (step " +
                std::to_string(st.step) + ")" +
                (last ? ", before the snapshot ensemble was scored" : "") +
                (r.last_checkpoint.empty() ? std::string() : resume_note(r.last_checkpoint));
    ++st.epoch;
    return true;
  }
  if (stop_early) {
    r.status = "early_stopped";
    r.message = "no better " + o.early_stop_monitor + " for " +
                count_noun(o.early_stop_patience, "epoch") + "; stopped after epoch " +
                std::to_string(es.epoch);
    ++st.epoch;
    return true;
  }
  return false;
}

void Trainer::Impl::score_snapshot_ensemble(FitResult& r) {
  const bool silent = o.progress_mode == -2;
  const std::string final_path = save_snapshot();
  if (!eval) return;
  // The members are rank 0's files: in a data-parallel job rank 0 loads each one and gives it to
  // the other ranks, every rank averages the members' predictions on its shard of the set, and
  // the shards' scores are added up (sync_from_root and combine_shards are free alone).
  Tensor sum;
  for (const std::string& p : st.snapshots) {
    if (writer) model.load(p);
    sync_from_root(model);
    const Tensor probs = predict_probabilities(model, *eval);
    if (!sum.defined()) {
      sum = probs.clone();
    } else {
      float* a = sum.data<float>();
      const float* q = probs.data<float>();
      for (int64_t i = 0; i < sum.numel(); ++i) a[i] += q[i];
    }
  }
  float* a = sum.data<float>();
  for (int64_t i = 0; i < sum.numel(); ++i) a[i] /= st.snapshots.size();
  r.ensemble =
      combine_shards(score_probabilities(sum, loader_labels(*eval), o.num_classes), o.num_classes);
  if (writer) model.load(final_path);  // leave the final weights in place
  sync_from_root(model);
  if (!silent)
    log_print("snapshot ensemble of %zu: %s loss %.4f acc %.2f%%\n", st.snapshots.size(),
              o.eval_split.c_str(), r.ensemble->loss, 100 * r.ensemble->top1);
}

}  // namespace cyclone::train
