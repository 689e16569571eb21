#!/usr/bin/env bash
# E3 — the Fashion-MNIST table's headline on a GPU (issue 13): WRN-28-10, 1cycle with cyclical
# momentum (0.95 -> 0.85) in 30 epochs, batch 128, crop + flip, bf16 and channels last, max_lr
# from Cyclone's own 300-step range test; target >= 0.959 mean test accuracy. Two variants, the
# range test's suggestion apart:
#   wrn28_10_one_cycle           valley (run 2026-11-27 on an H200: 0.0032, 0.9353 with seed 0,
#                                 under-trained: README.md)
#   wrn28_10_one_cycle_min_loss  min_loss (0.197 in that same range test), as E1's one_cycle
#   ./bin/train --config benchmarks/accuracy/E3/<variant>.json --seed {seed}
#     --log_dir benchmarks/accuracy/logs/E3/<variant>/seed{seed} --device=cuda
#   E3_VARIANTS="<variant> ..." benchmarks/accuracy/run_e3.sh [seeds...]
#     (default: wrn28_10_one_cycle_min_loss, seed 0)
# One seed is 14,070 steps plus the range test and 30 evaluations: 200.7 s on an H200
# (2026-11-27, 9.85k img/s), so two seeds fit one 10-minute device command. On a GPU host with a bundle (scripts/gpu_bundle.sh):
#   CYCLONE_BUNDLE=dist-bundle benchmarks/accuracy/run_e3.sh   (its bin/train, and the host's
#   cuDNN / cuBLAS found as scripts/gpu_run.sh finds them); the dataset where the registry looks
#   for it, /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist).
# Through the device tool, the bundle (~44 MiB) and the dataset (~30 MiB) do not fit one call's
# 64 MiB, so two calls, the second at once while the machine is still warm (2026-11-27):
#   1. carry [".fmnist"] (a git-excluded copy of the four .gz files):
#      mkdir -p /usr/share/datasets/fashion-mnist && cp .fmnist/*.gz /usr/share/datasets/fashion-mnist/
#   2. carry ["dist-bundle"]: CYCLONE_BUNDLE=dist-bundle benchmarks/accuracy/run_e3.sh 0 1
#      > $OUT/e3.log 2>&1; tar czf $OUT/e3_logs.tar.gz benchmarks/accuracy/logs/E3
set -euo pipefail
cd "$(dirname "$0")/../.."
source benchmarks/accuracy/common.sh
run_gpu_experiment E3 "wrn28_10_one_cycle_min_loss" "$@"
