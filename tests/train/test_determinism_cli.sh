#!/usr/bin/env bash
# Reproducibility from --seed, end to end on Fashion-MNIST:
#  - the data loader's workers (--workers 0, 2, 4), CYCLONE_NUM_THREADS (1, 3) and
#    OPENBLAS_NUM_THREADS (1, 2) do not change a bit of the trained weights or of history.csv (the
#    CPU GEMM tiles each product by its shape over the engine's pool, OpenBLAS single-threaded);
#    the start line and summary.json's cpu_blas name the kernels and the engine's threads;
#  - on the CPU --precision=tf32 gives fp32's weights bit for bit, --channels_last the same weights
#    on every run;
#  - a run resumed from an epoch checkpoint ends with the same weights, history and summary.json;
#  - a multi-phase run resumed between two phases (the later one never checkpointed, as after a
#    kill -9) ends with the straight run's weights, dropout included: phase_done.json records the
#    random streams, and without them the dropout masks (and the weights) differ.
# Usage: test_determinism_cli.sh /path/to/best_lr /path/to/train
set -euo pipefail
best_lr=$1 train=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/determinism_test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
fm=/usr/share/datasets/fashion-mnist
[ -d "$fm" ] || fail "$fm missing (scripts/install_deps.sh installs dataset-fashion-mnist)"
# The columns that do not measure time.
scores() { cut -d, -f1-9 "$1"; }

run() {  # run NAME FLAGS...: a short best_lr run into $tmp/NAME
  local name=$1; shift
  "$best_lr" --dataset=fashion_mnist --device=cpu --skip_test=0.05 --momentum=0.9 --augment=on \
    --batch_size=64 --num_epochs=1 --limit_train_batches=8 --limit_eval_batches=8 --save_model --no_plots \
    --log_dir="$tmp/$name" "$@" >"$tmp/$name.out" 2>&1 || fail "$name: exit $?: $(tail -3 "$tmp/$name.out")"
}
OPENBLAS_NUM_THREADS=2 run base --workers=2
OPENBLAS_NUM_THREADS=2 CYCLONE_NUM_THREADS=1 run serial --workers=0
OPENBLAS_NUM_THREADS=1 CYCLONE_NUM_THREADS=3 run wide --workers=4
for r in serial wide; do
  cmp -s "$tmp/base/model.safetensors" "$tmp/$r/model.safetensors" ||
    fail "$r: other weights than the default workers and threads"
  [ "$(scores "$tmp/base/history.csv")" = "$(scores "$tmp/$r/history.csv")" ] ||
    fail "$r: history.csv differs: $(scores "$tmp/$r/history.csv" | tail -1)"
done
grep -q "^1,8,[0-9.]*,[0-9.]*,[0-9.]*," "$tmp/base/history.csv" ||
  fail "no finite scores in history.csv: $(cat "$tmp/base/history.csv")"
grep -q "device cpu (fp32, OpenBLAS [A-Za-z0-9]*, 3 threads)" "$tmp/wide.out" ||
  fail "the start line does not name CYCLONE_NUM_THREADS's 3 threads: $(head -1 "$tmp/wide.out")"
grep -q '"cpu_blas": "OpenBLAS [A-Za-z0-9]*, 1 thread"' "$tmp/serial/summary.json" ||
  fail "summary.json's cpu_blas does not name the 1 thread: $(grep cpu_blas "$tmp/serial/summary.json")"

# On the CPU tf32 is fp32, bit for bit; channels last rounds otherwise but repeats itself.
OPENBLAS_NUM_THREADS=2 run tf32 --workers=2 --precision=tf32
cmp -s "$tmp/base/model.safetensors" "$tmp/tf32/model.safetensors" || fail "--precision=tf32 on the CPU: other weights than fp32"
for r in nhwc nhwc_again; do OPENBLAS_NUM_THREADS=2 run $r --channels_last; done
cmp -s "$tmp/nhwc/model.safetensors" "$tmp/nhwc_again/model.safetensors" || fail "--channels_last: two runs differ"

# Resumed from an epoch checkpoint: the same weights, history and summary.json (its policy too,
# which a resumed run knows only from the checkpoint).
resumable=(--cycle --policy=one_cycle --num_epochs=2 --checkpoint_every=1)
run straight2 "${resumable[@]}"
cp -r "$tmp/straight2" "$tmp/resumed2"
run resumed2 "${resumable[@]}" --resume="$tmp/resumed2/checkpoints/epoch-0001"
cmp -s "$tmp/straight2/model.safetensors" "$tmp/resumed2/model.safetensors" ||
  fail "resumed from epoch 1: other weights than the straight run"
[ "$(scores "$tmp/straight2/history.csv")" = "$(scores "$tmp/resumed2/history.csv")" ] ||
  fail "resumed from epoch 1: other scores: $(scores "$tmp/resumed2/history.csv")"
python3 - "$tmp/straight2/summary.json" "$tmp/resumed2/summary.json" <<'PY' || fail "summary.json differs after a resume"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
for k in ("policy", "chosen_lr", "final_test_accuracy", "best_test_accuracy", "steps", "status"):
    assert a[k] == b[k], (k, a[k], b[k])
PY

# Phases: straight, then resumed with the second phase's folder gone.
cat >"$tmp/phases.json" <<EOF
{"dataset": {"name": "fashion_mnist", "augment": true},
 "network": {"class": "lenet5", "dropout": 0.3},
 "device": "cpu",
 "trainer": {"batch_size": 64, "limit_train_batches": 6, "limit_eval_batches": 8, "workers": 1,
             "optimizer": {"name": "sgd", "momentum": 0.9},
             "phases": [
               {"name": "head", "epochs": 1, "freeze": ["conv1", "conv2"],
                "policy": {"policy": "constant", "lr": 0.02}},
               {"name": "all", "epochs": 1, "policy": {"policy": "cosine", "lr": 0.02, "total_epochs": 1}}]}}
EOF
phases() {  # phases DIR [FLAGS...]
  local dir=$1; shift
  "$train" --config "$tmp/phases.json" --log_dir "$tmp/$dir" "$@" >>"$tmp/$dir.out" 2>&1 ||
    fail "phases $dir: exit $?: $(tail -3 "$tmp/$dir.out")"
}
phases straight
grep -q '"rng"' "$tmp/straight/head/phase_done.json" || fail "phase_done.json records no random streams"
for d in resumed older; do
  cp -r "$tmp/straight" "$tmp/$d"
  rm -rf "$tmp/$d/all"
done
# A phase_done.json written before the streams were recorded: the check below can fail.
python3 -c 'import json, sys; p = sys.argv[1]; j = json.load(open(p)); del j["rng"]; json.dump(j, open(p, "w"))' \
  "$tmp/older/head/phase_done.json"
phases resumed --resume "$tmp/resumed"
phases older --resume "$tmp/older"
grep -q "phase 1/2 'head' was done: skipped (resuming)" "$tmp/resumed.out" ||
  fail "the resume did not skip the finished phase: $(cat "$tmp/resumed.out")"
cmp -s "$tmp/straight/all/end_model.safetensors" "$tmp/resumed/all/end_model.safetensors" ||
  fail "resumed between phases: other weights than the straight run"
[ "$(scores "$tmp/straight/all/history.csv")" = "$(scores "$tmp/resumed/all/history.csv")" ] ||
  fail "resumed between phases: other scores: $(scores "$tmp/resumed/all/history.csv" | tail -1)"
! cmp -s "$tmp/straight/all/end_model.safetensors" "$tmp/older/all/end_model.safetensors" ||
  fail "the phase trained the same without the recorded dropout stream: the check above tests nothing"
echo "determinism CLI test passed"
