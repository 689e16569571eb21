#!/usr/bin/env bash
# The run command: builds if needed, then runs the main job, ./bin/best_lr. With no arguments it
# runs the documented demo: the LR range test on Fashion-MNIST with LeNet-5 (400 batches), then
# 5 epochs of 1cycle training around the rate it found, leaving lr_finder.svg, schedule.svg,
# history.csv, TensorBoard events (tensorboard_logs/) and summary.json in ./logs. Arguments replace the demo's
# (see ./bin/best_lr --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
# OpenBLAS picks its CPU kernels for the processor (AVX2 or AVX-512), and they round differently in
# the last bits, which a range test near its divergence point magnifies into another rate. The
# AVX2 kernels, pinned where the CPU has them, make the run reproduce the README's output on any
# x86-64 machine (set OPENBLAS_CORETYPE yourself to choose otherwise).
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
  export OPENBLAS_CORETYPE=Haswell
fi
if [ $# -eq 0 ]; then
  set -- --dataset=fashion_mnist --cycle --policy=one_cycle --num_epochs=5 \
    --num_learning_batches=400 --log_dir=./logs
fi
exec bin/best_lr "$@"
