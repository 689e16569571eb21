#!/usr/bin/env bash
# Under a file-size limit (ulimit -f) or a small limit on open files (ulimit -n) a run that cannot
# write a file stops with one line naming the file and the limit, exit 1: never killed by SIGXFSZ
# (exit 153, nothing said), never a temporary file or an unfinished checkpoint left behind. Under a
# stack limit (ulimit -s) too small to run, one line at start, never a SIGSEGV.
# Usage: test_ulimits_cli.sh BEST_LR LR_SCHEDULE TRAIN
set -u
best_lr=$1 lr_schedule=$2 train=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# best_lr under `ulimit <flag> <value>`: a range test, one epoch, a checkpoint (6.8 MiB of MLP
# weights and optimizer state), plots, CSV and TensorBoard logs. Prints the exit code; stdout goes
# to /dev/null, which no file-size limit applies to. Checks what every outcome must satisfy.
run() {  # run <flag> <value>
  local dir=$tmp/run$1$2
  (
    # Only stdin, stdout and stderr open, whatever the test runner passed down (ctest: a pipe).
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      ((fd > 2)) && eval "exec $fd>&-"
    done
    ulimit "$1" "$2"
    exec timeout -s KILL 60 "$best_lr" --dataset=synthetic --device=cpu --workers=1 \
      --num_learning_batches=10 --num_epochs=1 --limit_train_batches=2 --log_dir="$dir"
  ) >/dev/null 2>"$dir.err"
  local rc=$?
  [[ $rc -ne 137 ]] || fail "best_lr hung under ulimit $1 $2"
  [[ $rc -ne 153 ]] || fail "best_lr was killed by SIGXFSZ under ulimit $1 $2"
  local left
  left=$(find "$dir" -name '.*' 2>/dev/null)
  [[ -z $left ]] || fail "ulimit $1 $2 left temporary files: $left"
  if [[ $rc -ne 0 ]]; then
    local err
    err=$(cat "$dir.err")
    [[ $rc -eq 1 ]] || fail "ulimit $1 $2: exit $rc, expected 0 or 1: $err"
    [[ $(wc -l <"$dir.err") -eq 1 ]] || fail "ulimit $1 $2: more than one line: $err"
  fi
  echo "$rc"
}

# ulimit -f counts KiB. 1 KiB: the range test's plot is too big; 512 KiB: the checkpoint.
for kib in 1 512; do
  rc=$(run -f $kib) || exit 1
  err=$(cat "$tmp/run-f$kib.err")
  [[ $rc -eq 1 ]] || fail "ulimit -f $kib: exit $rc, expected 1"
  [[ $err == "best_lr: cannot write $tmp/run-f$kib/"*"File too large (the process's file-size limit, ulimit -f, is $kib KiB: raise it"* ]] ||
    fail "ulimit -f $kib: the line does not name the file and the limit: $err"
done
[[ ! -e $tmp/run-f512/checkpoints/epoch-0001 ]] || fail "ulimit -f 512 left a checkpoint"

# From too few descriptors to run at all up to enough: each failure (data, logs, TensorBoard, the
# checkpoint, wherever this machine's count runs out) names the limit.
said=0
for n in 4 5 6 7 8 9 10 12 16; do
  rc=$(run -n $n) || exit 1
  if [[ $rc -eq 1 ]]; then
    err=$(cat "$tmp/run-n$n.err")
    [[ $err == "best_lr: "*"Too many open files (the process's limit on open files, ulimit -n, is $n: raise it"* ]] ||
      fail "ulimit -n $n: the line does not name the limit: $err"
    said=1
  fi
done
[[ $said -eq 1 ]] || fail "no ulimit -n from 4 to 16 stopped best_lr"

# lr_schedule streams rows to stdout: a refused write stops it at once, not 10^8 rows later.
out=$( (
  ulimit -f 1
  exec timeout -s KILL 20 "$lr_schedule" --spec '{"policy":"constant","lr":0.1}' \
    --steps 100000000 >"$tmp/rows.csv"
) 2>&1)
rc=$?
[[ $rc -eq 1 ]] || fail "lr_schedule under ulimit -f 1: exit $rc, expected 1: $out"
[[ $out == "lr_schedule: cannot write the schedule to stdout: File too large (the process's file-size limit, ulimit -f, is 1 KiB"* ]] ||
  fail "lr_schedule under ulimit -f 1: $out"

# ulimit -s counts KiB. glibc gives every thread a stack of that size: under 32 KiB best_lr crashed
# (SIGSEGV) with its threads, under 128 KiB train crashed parsing a deeply nested YAML config.
# Not below 64 KiB here: around 16 KiB the dynamic loader (and, in a CUDA-linked build, the
# libraries' start-up code) may run out before main, which no program can report (CI saw exit 139
# at 16 KiB, 2 runs in 3).
for kib in 64 256 512; do
  for app in "$best_lr" "$lr_schedule"; do
    out=$( (
      ulimit -s $kib
      exec timeout -s KILL 20 "$app" --help
    ) 2>&1 >/dev/null)
    rc=$?
    name=$(basename "$app")
    [[ $rc -eq 1 ]] || fail "$name under ulimit -s $kib: exit $rc, expected 1: $out"
    [[ $out == "$name: the stack limit (ulimit -s) is $kib KiB, less than the 1 MiB"*"raise it"* ]] ||
      fail "$name under ulimit -s $kib: $out"
  done
done
# At the least limit allowed, the deepest YAML yaml-cpp reads (499 levels) is a usage error.
printf 'dataset: {name: fashion_mnist}\nx: %s%s\n' "$(printf '[%.0s' {1..499})" \
  "$(printf ']%.0s' {1..499})" >"$tmp/deep.yml"
out=$( (
  ulimit -s 1024
  exec timeout -s KILL 20 "$train" --config "$tmp/deep.yml" --log_dir "$tmp/deep"
) 2>&1)
rc=$?
[[ $rc -eq 2 && $out == *"deep.yml:2: nested deeper than 64 levels"* ]] ||
  fail "train with a 499-level YAML under ulimit -s 1024: exit $rc: $out"
echo "PASS"
