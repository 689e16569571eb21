#!/usr/bin/env bash
# E3 — the Fashion-MNIST table's headline on a GPU (issue 13): WRN-28-10, 1cycle with cyclical
# momentum (0.95 -> 0.85) in 30 epochs, batch 128, crop + flip, bf16 and channels last, max_lr
# from Cyclone's own 300-step range test (the valley suggestion: the min-loss rate, the edge of
# stability, is a risky peak for a 36M-parameter network); target >= 0.959 mean test accuracy.
#   ./bin/train --config benchmarks/accuracy/E3/wrn28_10_one_cycle.json --seed {seed}
#     --log_dir benchmarks/accuracy/logs/E3/wrn28_10_one_cycle/seed{seed} --device=cuda
#   benchmarks/accuracy/run_e3.sh [seeds...]        (default: 0)
# One seed is ~14,000 steps: about 4 minutes at the 16 ms per bf16 step measured on an H200,
# plus the range test and 30 evaluations. On a GPU host with a bundle (scripts/gpu_bundle.sh):
#   CYCLONE_BUNDLE=dist-bundle benchmarks/accuracy/run_e3.sh   (its bin/train, and the host's
#   cuDNN / cuBLAS found as scripts/gpu_run.sh finds them); the dataset where the registry looks
#   for it, /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -n "${CYCLONE_BUNDLE:-}" ]; then
  bundle=$(cd "$CYCLONE_BUNDLE" && pwd)
  python=${PYTHON:-python3}
  source scripts/gpu_env.sh
  setup_libraries
  export TRAIN_BIN=$bundle/bin/train
fi
[ -n "${TRAIN_BIN:-}" ] || [ -x bin/train ] || scripts/build.sh
source benchmarks/accuracy/common.sh
export RUN_ONE_ARGS=${RUN_ONE_ARGS:---device=cuda}
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(0)
for seed in "${seeds[@]}"; do
  dir=benchmarks/accuracy/logs/E3/wrn28_10_one_cycle/seed$seed
  fresh_dir "$dir"
  run_one "E3 wrn28_10_one_cycle seed $seed" benchmarks/accuracy/E3/wrn28_10_one_cycle.json \
    "$seed" "$dir"
done
