#!/usr/bin/env bash
# usage: run.sh OUTDIR  (from the repo root; bin/ built)
set -u
out=$1; mkdir -p "$out"
./bin/cyclone_bench --benchmark_filter='(gemm|conv_).*/cpu/' --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true --benchmark_format=json >"$out/bench.json" 2>"$out/bench.err"
./bin/cyclone_bench_train --device=cpu --workloads=lenet5-train-bs128,resnet56-train-bs128 --engines=cyclone \
  --precisions=fp32 --steps=20 --reps=3 --warmup=3 >"$out/train.json" 2>"$out/train.err"
T=$(mktemp -d)
one() {  # one NAME: the quick best_lr run, wall/user/sys
  /usr/bin/time -f "%e s wall %U s user %S s sys" ./bin/best_lr --dataset=fashion_mnist --num_learning_batches=300 \
    --limit_train_batches=30 --num_epochs=1 --device=cpu --log_dir="$T/$1" --no_plots >"$T/$1.out" 2>"$T/$1.time"
  echo "$1: $(tail -1 "$T/$1.time")" | tee -a "$out/best_lr_load.txt"
}
: >"$out/best_lr_load.txt"
one idle
loops=()
for i in 1 2; do timeout 600 sh -c 'while :; do :; done' & loops+=($!); done
sleep 1
one loaded_2_busy_loops
kill "${loops[@]}"
rm -rf "$T"
