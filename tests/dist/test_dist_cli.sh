#!/usr/bin/env bash
# Data-parallel runs through the front door, on CPUs with MPI (ctest dist.cli):
#   mpirun -np 2 ./bin/best_lr ...
# 1. 2 ranks with batch 32 train to the same weights as 1 rank with batch 64 (10 steps of SGD with
#    momentum on Fashion-MNIST), and only rank 0 prints and writes;
# 2. the linear scaling rule scales a given rate by the number of ranks, with warmup;
# 3. ranks started with different flags stop at once, naming the rank and the flag;
# 4. a rank killed with SIGKILL takes the job down, and mpirun names it;
# 5. a rank that stops answering (SIGSTOP) makes the others time out (CYCLONE_DIST_TIMEOUT) and
#    end the job with a message naming the operation, instead of hanging;
# 6. RANK / WORLD_SIZE without mpirun is refused with what to do.
set -uo pipefail
best_lr=$1
mpirun=$2
python=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi=("$mpirun" --oversubscribe --bind-to none)
fail() {
  echo "FAIL: $*"
  exit 1
}
common=(--dataset=fashion_mnist --num_epochs=1 --limit_train_batches=10 --workers=1 --no_plots
        --device=cpu --optimizer=sgd --momentum=0.9)

# ---- 1. the same training, 1 x 64 and 2 x 32 ----
timeout 300 "${mpi[@]}" -np 1 "$best_lr" "${common[@]}" --skip_test=0.05 --batch_size=64 \
  --save_model --log_dir="$tmp/one" >"$tmp/one.out" 2>&1 || { cat "$tmp/one.out"; fail "1 rank"; }
timeout 300 "${mpi[@]}" -np 2 "$best_lr" "${common[@]}" --skip_test=0.05 --batch_size=32 \
  --lr_scaling=none --save_model --log_dir="$tmp/two" >"$tmp/two.out" 2>&1 ||
  { cat "$tmp/two.out"; fail "2 ranks"; }
grep -q "data parallel over 2 ranks (mpirun), batch 32 per rank, global batch 64" "$tmp/two.out" ||
  { cat "$tmp/two.out"; fail "no data-parallel line"; }
[ "$(grep -c 'epoch 1/1  train loss' "$tmp/two.out")" = 1 ] ||
  { cat "$tmp/two.out"; fail "the epoch line should be printed once (rank 0 only)"; }
"$python" - "$tmp/one/model.safetensors" "$tmp/two/model.safetensors" "$tmp/one" "$tmp/two" <<'PY' ||
import json, sys
from safetensors.numpy import load_file
a, b = load_file(sys.argv[1]), load_file(sys.argv[2])
assert a.keys() == b.keys(), (a.keys(), b.keys())
worst = max(float(abs(a[k] - b[k]).max()) for k in a)
scale = max(float(abs(a[k]).max()) for k in a)
print(f"max |w_1x64 - w_2x32| = {worst:.3g} (weights up to {scale:.3g})")
assert worst < 1e-4, worst
s1 = json.load(open(sys.argv[3] + "/summary.json"))
s2 = json.load(open(sys.argv[4] + "/summary.json"))
assert s2["ranks"] == 2 and s2["global_batch_size"] == 64, s2
assert abs(s1["final_test_accuracy"] - s2["final_test_accuracy"]) < 2e-3, (s1, s2)
PY
  fail "the weights of 2 ranks x 32 differ from 1 rank x 64"

# ---- 1b. synchronized batch norm: 2 x 16 with --sync_bn trains a ResNet as 1 x 32 does ----
bn=(--model=resnet8 --limit_train_batches=2 --skip_test=0.05 --save_model)
timeout 300 "${mpi[@]}" -np 1 "$best_lr" "${common[@]}" "${bn[@]}" --batch_size=32 \
  --log_dir="$tmp/bn1" >"$tmp/bn1.out" 2>&1 || { cat "$tmp/bn1.out"; fail "resnet8, 1 rank"; }
timeout 300 "${mpi[@]}" -np 2 "$best_lr" "${common[@]}" "${bn[@]}" --batch_size=16 --sync_bn \
  --lr_scaling=none --log_dir="$tmp/bn2" >"$tmp/bn2.out" 2>&1 ||
  { cat "$tmp/bn2.out"; fail "resnet8, 2 ranks, --sync_bn"; }
grep -q "synchronized batch norm in 7 layer(s)" "$tmp/bn2.out" || { cat "$tmp/bn2.out"; fail "no sync_bn line"; }
"$python" - "$tmp/bn1/model.safetensors" "$tmp/bn2/model.safetensors" <<'PY' ||
import sys
from safetensors.numpy import load_file
a, b = load_file(sys.argv[1]), load_file(sys.argv[2])
worst = max(float(abs(a[k].astype(float) - b[k].astype(float)).max()) for k in a)
print(f"sync_bn: max |w_1x32 - w_2x16| = {worst:.3g} over {len(a)} tensors (running stats too)")
assert worst < 1e-4, worst
PY
  fail "2 ranks with --sync_bn differ from 1 rank"

# ---- 2. linear scaling of a given rate ----
timeout 300 "${mpi[@]}" -np 2 "$best_lr" "${common[@]}" --skip_test=0.05 --batch_size=32 \
  --lr_warmup_epochs=0 --log_dir="$tmp/scaled" >"$tmp/scaled.out" 2>&1 ||
  { cat "$tmp/scaled.out"; fail "scaled run"; }
grep -q "rates x 2 for the global batch (linear scaling over 2 ranks), reached after 0 warmup" \
  "$tmp/scaled.out" || { cat "$tmp/scaled.out"; fail "no scaling line"; }
"$python" - "$tmp/scaled/history.csv" <<'PY' || fail "the scaled rate is not 2 x 0.05 in history.csv"
import csv, sys
row = list(csv.DictReader(open(sys.argv[1])))[-1]
assert abs(float(row["lr"]) - 0.1) < 1e-9, row
PY

# ---- 3. ranks started differently ----
timeout 120 "${mpi[@]}" -np 2 sh -c 'exec "$0" "$@" --batch_size=$((32 + OMPI_COMM_WORLD_RANK))' \
  "$best_lr" "${common[@]}" --skip_test=0.05 --log_dir="$tmp/mismatch" >"$tmp/mismatch.out" 2>&1
rc=$?
[ $rc -ne 0 ] || fail "mismatched ranks exited 0"
grep -q "rank 1/2: ranks started differently: the configuration of rank(s) 1 differs from rank 0's in batch_size (rank 0: 32, here: 33)" \
  "$tmp/mismatch.out" || { cat "$tmp/mismatch.out"; fail "no mismatch message"; }

# ---- 4. a rank killed ----
start=$SECONDS
timeout 120 "${mpi[@]}" -np 2 sh -c \
  'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then (sleep 4; kill -9 $$) & fi; exec "$0" "$@"' \
  "$best_lr" "${common[@]}" --limit_train_batches=0 --num_epochs=3 --skip_test=0.05 \
  --batch_size=32 --log_dir="$tmp/killed" >"$tmp/killed.out" 2>&1
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || { cat "$tmp/killed.out"; fail "killed rank: exit $rc"; }
[ $((SECONDS - start)) -lt 100 ] || fail "the job took too long to end after a rank died"
grep -q "rank 1 with PID" "$tmp/killed.out" || { cat "$tmp/killed.out"; fail "the dead rank is not named"; }

# ---- 5. a rank that stops answering ----
start=$SECONDS
CYCLONE_DIST_TIMEOUT=5 timeout 120 "${mpi[@]}" -x CYCLONE_DIST_TIMEOUT -np 2 sh -c \
  'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then (sleep 4; kill -STOP $$) & fi; exec "$0" "$@"' \
  "$best_lr" "${common[@]}" --limit_train_batches=0 --num_epochs=3 --skip_test=0.05 \
  --batch_size=32 --log_dir="$tmp/hung" >"$tmp/hung.out" 2>&1
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || { cat "$tmp/hung.out"; fail "hung rank: exit $rc (124: the job hung)"; }
grep -q "did not complete within 5 s on rank 0: another rank died or stopped answering" \
  "$tmp/hung.out" || { cat "$tmp/hung.out"; fail "no timeout message"; }

# ---- 6. torchrun-style variables without mpirun ----
WORLD_SIZE=2 RANK=0 "$best_lr" "${common[@]}" --skip_test=0.05 --log_dir="$tmp/ws" \
  >"$tmp/ws.out" 2>&1
rc=$?
[ $rc -eq 1 ] || { cat "$tmp/ws.out"; fail "WORLD_SIZE without mpirun: exit $rc"; }
grep -q "WORLD_SIZE=2 is set but this process was not started by mpirun" "$tmp/ws.out" ||
  { cat "$tmp/ws.out"; fail "no WORLD_SIZE message"; }
[ "$(wc -l <"$tmp/ws.out")" = 1 ] || { cat "$tmp/ws.out"; fail "more than one line"; }
echo "PASS dist cli"
