#!/usr/bin/env bash
# The run command: builds if needed, then runs the main job, ./bin/best_lr. With no arguments it
# runs the documented demo: the LR range test on Fashion-MNIST with LeNet-5 (400 batches), then
# 5 epochs of 1cycle training around the rate it found, leaving lr_finder.svg, schedule.svg,
# history.csv, TensorBoard events (tensorboard_logs/) and summary.json in ./logs. Arguments replace the demo's
# (see ./bin/best_lr --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
if [ $# -eq 0 ]; then
  set -- --dataset=fashion_mnist --cycle --policy=one_cycle --num_epochs=5 \
    --num_learning_batches=400 --log_dir=./logs
fi
exec bin/best_lr "$@"
