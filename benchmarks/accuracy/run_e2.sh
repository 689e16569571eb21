#!/usr/bin/env bash
# E2 — super-convergence on a GPU (issue 13): WRN-16-4 on Fashion-MNIST padded to 32x32
# (dataset.pad_to) with crop (2-pixel padding) and flip, bf16 and channels last, batch 128, SGD
# with weight decay 5e-4:
#   wrn16_4_multistep  the classic schedule at its usual long budget: 200 epochs, lr 0.1 (Nesterov
#                      momentum 0.9) times 0.2 at epochs 60, 120 and 160 (Zagoruyko and
#                      Komodakis's Wide ResNet schedule)
#   wrn16_4_one_cycle  1cycle over a quarter of it, 50 epochs, momentum 0.95 -> 0.85, the peak from
#                      the run's own range test (min_loss, as E1's one_cycle)
# Time to accuracy comes from history.csv (test accuracy and wall seconds after every epoch).
#   ./bin/train --config benchmarks/accuracy/E2/<variant>.json --seed {seed}
#     --log_dir benchmarks/accuracy/logs/E2/<variant>/seed{seed} --device=cuda
#   E2_VARIANTS="<variant> ..." benchmarks/accuracy/run_e2.sh [seeds...]  (default: both, seed 0)
# Not yet run: the multistep run is 93,800 steps, the 1cycle run 23,450; at an estimated 3 ms per
# bf16 step on an H200 about 5 and 1.2 minutes. On a GPU host through the device tool, as
# run_e3.sh says (the dataset in one call, then CYCLONE_BUNDLE=dist-bundle in the next).
set -euo pipefail
cd "$(dirname "$0")/../.."
source benchmarks/accuracy/common.sh
run_gpu_experiment E2 "wrn16_4_one_cycle wrn16_4_multistep" "$@"
