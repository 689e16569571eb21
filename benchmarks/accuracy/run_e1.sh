#!/usr/bin/env bash
# E1 — schedules at a fixed budget (CPU): Fashion-MNIST, LeNet-5, 5 epochs, batch 128, SGD with
# momentum 0.9 and weight decay 5e-4, seeds 0 1 2; every rate from Cyclone's own range test.
#   constant     at the range test's min_loss_div10 suggestion
#   step_decay   min_loss_div10, x0.1 after epochs 3 and 4
#   triangular   CLR between min_loss / 10 and min_loss, step size 2.5 epochs (one cycle)
#   one_cycle    max min_loss, momentum 0.95 -> 0.85 -> 0.95
# Each run: ./bin/train --config benchmarks/accuracy/E1/<policy>.json --seed {seed}
#   --log_dir benchmarks/accuracy/logs/E1/<policy>/seed{seed}
# Raw logs stay (summary.json, history.csv, steps.csv, lr_finder.csv, stdout.log); checkpoints
# are deleted. Then aggregate.py writes results.json and the plots.
#   benchmarks/accuracy/run_e1.sh [seeds...]        (default: 0 1 2)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x bin/train ] || scripts/build.sh
source benchmarks/accuracy/common.sh
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(0 1 2)
run_grid E1 "constant step_decay triangular one_cycle" "${seeds[@]}"
python3 benchmarks/accuracy/aggregate.py
