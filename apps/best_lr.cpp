// best_lr: Leslie Smith's learning-rate range test, then training at (or cycling around) the rate
// it found — the flags and semantics of the original Keras best_lr.py demo, and more
// (train/best_lr_options.h lists them; --help prints them).
//
//   ./bin/best_lr --dataset=fashion_mnist --cycle --num_epochs=5 --num_learning_batches=400
//
// Exit codes: 0 success, 1 runtime error (data, memory, divergence), 2 usage error; Ctrl-C /
// SIGTERM exit 0: during training after writing a checkpoint and saying where, during the range
// test after writing its partial curve (no training).
#include <cstdio>

#include "cyclone/train/best_lr_options.h"
#include "cyclone/train/run.h"
#include "cyclone/train/startup.h"

int main(int argc, char** argv) {
  using namespace cyclone::train;
  prepare_for_limits("best_lr");
  exit_if_blas_cannot_run("best_lr", /*multiplies=*/true);
  return run_program("best_lr", [&] {
    const BestLrOptions o = parse_best_lr_options(argc, argv);
    if (o.help) {
      std::printf("%s", best_lr_help().c_str());
      return 0;
    }
    return run_experiment(run_spec_from(o)).exit_code;
  });
}
