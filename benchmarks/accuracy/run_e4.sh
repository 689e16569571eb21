#!/usr/bin/env bash
# E4 — Smith's recommendations R5 / R6 (arXiv 1803.09820, sections 4.3-4.4), CPU: LeNet-5 on
# Fashion-MNIST, 1cycle for 5 epochs at batch 128, the rate from each run's own range test
# (min_loss), seeds 0 1 2 (default).
#   weight decay: wd_1e-3, wd_3e-4, wd_1e-4, wd_3e-5 (cyclical momentum 0.95 -> 0.85)
#   momentum:     wd_3e-4 (cyclical 0.95 -> 0.85) against momentum_constant (0.9 throughout)
# Question: does the test loss of the first epochs pick the same winner as the final accuracy?
# Each run: ./bin/train --config benchmarks/accuracy/E4/<variant>.json --seed {seed}
#   --log_dir benchmarks/accuracy/logs/E4/<variant>/seed{seed}
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x bin/train ] || scripts/build.sh
source benchmarks/accuracy/common.sh
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(0 1 2)
run_grid E4 "wd_1e-3 wd_3e-4 wd_1e-4 wd_3e-5 momentum_constant" "${seeds[@]}"
python3 benchmarks/accuracy/aggregate.py
