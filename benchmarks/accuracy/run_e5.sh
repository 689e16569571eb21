#!/usr/bin/env bash
# E5 — range-test repeatability (CPU): 10 range tests (lr_finder.repeats 10, each on other data
# epochs) for LeNet-5 (300 steps, batch 128) and ResNet-8 (200 steps, batch 64) on
# Fashion-MNIST, then 1cycle at the median min_loss rate (the run itself: its summary.json holds
# every suggestion's median and spread) and at the extremes (min and max over the 10 tests):
#   median: ./bin/train --config benchmarks/accuracy/E5/<model>.json --seed 0
#             --log_dir benchmarks/accuracy/logs/E5/<model>_median/seed0
#   min/max: the same config without the range test and max_lr set to the extreme, written next to
#            the run's logs as config.json:
#           ./bin/train --config benchmarks/accuracy/logs/E5/<model>_<min|max>/seed0/config.json
#             --seed 0 --log_dir benchmarks/accuracy/logs/E5/<model>_<min|max>/seed0
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x bin/train ] || scripts/build.sh
source benchmarks/accuracy/common.sh
for model in lenet5 resnet8; do
  dir=benchmarks/accuracy/logs/E5/${model}_median/seed0
  fresh_dir "$dir"
  run_one "E5 $model median" "benchmarks/accuracy/E5/$model.json" 0 "$dir"
  for extreme in min max; do
    out=benchmarks/accuracy/logs/E5/${model}_$extreme/seed0
    fresh_dir "$out"
    python3 - "benchmarks/accuracy/E5/$model.json" "$dir/summary.json" "$extreme" \
      >"$out/config.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
spread = json.load(open(sys.argv[2]))["lr_finder"]["spread"]["min_loss_lr"]
del config["lr_finder"]
config["policy"]["max_lr"] = spread[sys.argv[3]]
json.dump(config, sys.stdout, indent=2)
PY
    run_one "E5 $model $extreme" "$out/config.json" 0 "$out"
  done
done
python3 benchmarks/accuracy/aggregate.py
