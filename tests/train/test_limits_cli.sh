#!/usr/bin/env bash
# Under an address-space limit (ulimit -v, common under batch schedulers) OpenBLAS needs 128 MiB
# per thread and retries a refused buffer for ever: the apps must say so in one line and exit 1,
# never hang (at start, in their first multiplication, or at exit). With room under the limit, a
# short training runs its products on one thread (each thread multiplying would take another
# buffer) and ends with the same weights as without a limit.
# Usage: test_limits_cli.sh BEST_LR LR_SCHEDULE
set -u
best_lr=$1 lr_schedule=$2
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/limits_test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

said=0
# From too little to load the program up to plenty, in steps smaller than a buffer, so that some
# limit loads the program but leaves less than a buffer free whatever this machine maps at start.
for ((kib = 65536; kib <= 1048576; kib += 32768)); do
  for threads in 1 4; do
    out=$( (ulimit -v $kib; OPENBLAS_NUM_THREADS=$threads timeout -s KILL 20 "$best_lr" --help) 2>&1)
    rc=$?
    [[ $rc -ne 124 && $rc -ne 137 ]] || fail "best_lr hung under ulimit -v $kib ($threads threads)"
    if [[ $out == *"OpenBLAS needs"* ]]; then
      [[ $rc -eq 1 ]] || fail "exit $rc, expected 1: $out"
      [[ $(wc -l <<<"$out") -eq 1 ]] || fail "more than one line: $out"
      [[ $out == "best_lr: the address-space limit (ulimit -v) is "*"raise it to at least "* ]] ||
        fail "the line does not name the limit and what to do: $out"
      [[ $threads -eq 1 || $out == *"OPENBLAS_NUM_THREADS=1"* ]] ||
        fail "with several threads the line should offer OPENBLAS_NUM_THREADS: $out"
      said=1
    fi
    # lr_schedule multiplies nothing: with one thread it runs wherever it loads.
    out=$( (ulimit -v $kib; OPENBLAS_NUM_THREADS=$threads timeout -s KILL 20 "$lr_schedule" \
      --spec '{"policy":"constant","lr":0.1}' --steps 2) 2>&1)
    rc=$?
    [[ $rc -ne 124 && $rc -ne 137 ]] || fail "lr_schedule hung under ulimit -v $kib ($threads threads)"
    if [[ $out == *"OpenBLAS needs"* ]]; then
      [[ $rc -eq 1 && $threads -gt 1 ]] || fail "lr_schedule (exit $rc, $threads threads): $out"
    elif [[ $rc -eq 0 ]]; then
      [[ $out == *"1,0.1,0.9"* ]] || fail "lr_schedule printed: $out"
    fi
  done
done
[[ $said -eq 1 ]] || fail "no limit between 64 MiB and 1 GiB gave the OpenBLAS line"

[ -d /usr/share/datasets/fashion-mnist ] ||
  fail "/usr/share/datasets/fashion-mnist missing (scripts/install_deps.sh installs dataset-fashion-mnist)"
train_run() {  # train_run NAME [ulimit -v KiB]: a short training into $tmp/NAME
  local name=$1 kib=${2:-unlimited}
  (ulimit -v "$kib"; OPENBLAS_NUM_THREADS=4 CYCLONE_NUM_THREADS=2 timeout -s KILL 120 "$best_lr" \
    --dataset=fashion_mnist --device=cpu --batch_size=64 --num_epochs=1 --limit_train_batches=20 \
    --limit_eval_batches=4 --num_learning_batches=20 --save_model --no_plots \
    --log_dir="$tmp/$name") >"$tmp/$name.out" 2>&1 || fail "$name: exit $?: $(tail -2 "$tmp/$name.out")"
}
train_run free
train_run limited 3145728  # 3 GiB: OpenBLAS's 4 buffers, the data and the model fit
cmp -s "$tmp/free/model.safetensors" "$tmp/limited/model.safetensors" ||
  fail "under ulimit -v 3 GiB: other weights than without a limit"
echo "PASS"
