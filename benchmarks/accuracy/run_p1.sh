#!/usr/bin/env bash
# P1 — mixed precision and channels last keep the accuracy (issue 8: "accuracy unchanged within
# noise on the Fashion-MNIST reference run"): E1's one_cycle run (LeNet-5, 5 epochs, batch 128,
# the rate from its own range test) with trainer.precision = bf16 (bfloat16 products and
# activations, float32 master weights), = fp16 (float16, dynamic loss scaling), and with
# trainer.channels_last, for seeds 0 1 2, beside E1's float32 one_cycle rows in the README.
#   ./bin/train --config benchmarks/accuracy/P1/{variant}.json --seed {seed}
#     --log_dir benchmarks/accuracy/logs/P1/{variant}/seed{seed}
#   benchmarks/accuracy/run_p1.sh [seeds...]        (default: 0 1 2)
#   P1_VARIANTS="one_cycle_fp16" benchmarks/accuracy/run_p1.sh     (default: all three)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x bin/train ] || scripts/build.sh
source benchmarks/accuracy/common.sh
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(0 1 2)
run_grid P1 "${P1_VARIANTS:-one_cycle_bf16 one_cycle_fp16 one_cycle_channels_last}" "${seeds[@]}"
python3 benchmarks/accuracy/aggregate.py
