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
# 6. RANK / WORLD_SIZE without mpirun is refused with what to do;
# 7. what a job refuses before any work (exit 2, nothing written): ranks with different settings
#    that change the steps, snapshot ensembles, an absurd --lr_warmup_epochs; a bad
#    CYCLONE_DIST_TIMEOUT on one rank ends the job with one line instead of hanging;
# 8. synchronized batch norm with a last global batch of fewer images than ranks;
# 9. --summary prints once per job; --help with WORLD_SIZE set prints help and exits 0.
set -uo pipefail
best_lr=$1
mpirun=$2
train=${3:-$(dirname "$best_lr")/train}
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
# A world of one under mpirun pays for the data-parallel path, and says so; two ranks do not.
grep -q "a world of one under mpirun still reduces the gradients" "$tmp/one.out" ||
  { cat "$tmp/one.out"; fail "no world-of-one line"; }
! grep -q "a world of one" "$tmp/two.out" || { cat "$tmp/two.out"; fail "world-of-one line at 2"; }
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
# The printed range and the summary are the rates the steps used, not the policy's unscaled ones.
grep -q "training 10 steps with .*, lr in \[0.1, 0.1\]" "$tmp/scaled.out" ||
  { cat "$tmp/scaled.out"; fail "the printed range is not the scaled rate"; }
"$python" - "$tmp/scaled/summary.json" <<'PY' || fail "summary.json does not hold the scaled rate"
import json, sys
s = json.load(open(sys.argv[1]))
assert abs(s["train_lr_min"] - 0.1) < 1e-9 and abs(s["train_lr_max"] - 0.1) < 1e-9, s
PY

# ---- 3. ranks started differently ----
timeout 120 "${mpi[@]}" -np 2 sh -c 'exec "$0" "$@" --batch_size=$((32 + OMPI_COMM_WORLD_RANK))' \
  "$best_lr" "${common[@]}" --skip_test=0.05 --log_dir="$tmp/mismatch" >"$tmp/mismatch.out" 2>&1
rc=$?
[ $rc -eq 2 ] || { cat "$tmp/mismatch.out"; fail "mismatched ranks: exit $rc, not 2 (usage)"; }
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
CYCLONE_DIST_TIMEOUT=5.5 timeout 120 "${mpi[@]}" -x CYCLONE_DIST_TIMEOUT -np 2 sh -c \
  'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then (sleep 4; kill -STOP $$) & fi; exec "$0" "$@"' \
  "$best_lr" "${common[@]}" --limit_train_batches=0 --num_epochs=3 --skip_test=0.05 \
  --batch_size=32 --log_dir="$tmp/hung" >"$tmp/hung.out" 2>&1
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || { cat "$tmp/hung.out"; fail "hung rank: exit $rc (124: the job hung)"; }
grep -q "did not complete within 5.5 s on rank 0: another rank died or stopped answering" \
  "$tmp/hung.out" || { cat "$tmp/hung.out"; fail "no timeout message"; }

# ---- 6. torchrun-style variables without mpirun ----
WORLD_SIZE=2 RANK=0 "$best_lr" "${common[@]}" --skip_test=0.05 --log_dir="$tmp/ws" \
  >"$tmp/ws.out" 2>&1
rc=$?
[ $rc -eq 1 ] || { cat "$tmp/ws.out"; fail "WORLD_SIZE without mpirun: exit $rc"; }
grep -q "WORLD_SIZE=2 is set but this process was not started by mpirun" "$tmp/ws.out" ||
  { cat "$tmp/ws.out"; fail "no WORLD_SIZE message"; }
[ "$(wc -l <"$tmp/ws.out")" = 1 ] || { cat "$tmp/ws.out"; fail "more than one line"; }
# ---- 7. refused before any work ----
# Settings the old start-up check missed (one rank's momentum sweep left the other waiting
# forever; one rank's --lr_min moved rank 0's chosen rate), each named.
timeout 120 "${mpi[@]}" -np 2 sh -c \
  'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then exec "$0" "$@" --momentum_test=0.9 --lr_min=1e-5; fi; exec "$0" "$@"' \
  "$best_lr" "${common[@]}" --log_dir="$tmp/differ" >"$tmp/differ.out" 2>&1
rc=$?
[ $rc -eq 2 ] || { cat "$tmp/differ.out"; fail "ranks with other settings: exit $rc, not 2"; }
for key in "lr_finder.momentum_test (rank 0: [], here: [0.9])" "lr_finder.start_lr (rank 0: 0.0001, here: 1e-05)"; do
  grep -qF "$key" "$tmp/differ.out" || { cat "$tmp/differ.out"; fail "the mismatch does not name $key"; }
done
[ ! -e "$tmp/differ" ] || { ls -R "$tmp/differ"; fail "ranks with other settings left files"; }

timeout 120 "${mpi[@]}" -np 2 "$best_lr" "${common[@]}" --cycle --policy=sgdr \
  --log_dir="$tmp/sgdr" >"$tmp/sgdr.out" 2>&1
rc=$?
[ $rc -eq 2 ] || { cat "$tmp/sgdr.out"; fail "a snapshot ensemble in a job: exit $rc, not 2"; }
grep -q "rank 0/2: --cycle --policy=sgdr (which keeps a snapshot ensemble) is not supported in a data-parallel job" \
  "$tmp/sgdr.out" || { cat "$tmp/sgdr.out"; fail "no snapshot ensemble message"; }
[ ! -e "$tmp/sgdr" ] || { ls -R "$tmp/sgdr"; fail "the refused snapshot ensemble left files"; }

"$best_lr" "${common[@]}" --lr_warmup_epochs=1e300 --log_dir="$tmp/warm" >"$tmp/warm.out" 2>&1
rc=$?
[ $rc -eq 2 ] || { cat "$tmp/warm.out"; fail "--lr_warmup_epochs=1e300: exit $rc, not 2"; }
grep -q "lr_warmup_epochs" "$tmp/warm.out" && [ ! -e "$tmp/warm" ] ||
  { cat "$tmp/warm.out"; fail "--lr_warmup_epochs=1e300 not refused at parse time"; }
printf '%s\n' '{"dataset": {"name": "fashion_mnist"}, "network": {"class": "lenet5"},' \
  " \"trainer\": {\"model_dir\": \"$tmp/warmc\", \"lr_warmup_epochs\": 1e300," \
  '             "optimizer": {"name": "sgd", "lr": 0.1}}}' >"$tmp/warm.json"
"$train" --config "$tmp/warm.json" --device cpu >"$tmp/warmc.out" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "trainer.lr_warmup_epochs" "$tmp/warmc.out" ||
  { cat "$tmp/warmc.out"; fail "trainer.lr_warmup_epochs 1e300: exit $rc, not 2 naming the key"; }

start=$SECONDS
timeout 120 "${mpi[@]}" -np 2 sh -c \
  'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then export CYCLONE_DIST_TIMEOUT=abc; fi; exec "$0" "$@"' \
  "$best_lr" "${common[@]}" --skip_test=0.05 --log_dir="$tmp/badto" >"$tmp/badto.out" 2>&1
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] ||
  { cat "$tmp/badto.out"; fail "bad CYCLONE_DIST_TIMEOUT: exit $rc (124: the job hung)"; }
[ $((SECONDS - start)) -lt 60 ] || fail "a bad CYCLONE_DIST_TIMEOUT took too long to end the job"
grep -q "CYCLONE_DIST_TIMEOUT='abc' on rank 1 must be a number of seconds > 0" "$tmp/badto.out" ||
  { cat "$tmp/badto.out"; fail "no CYCLONE_DIST_TIMEOUT message"; }

# ---- 8. synchronized batch norm, a last global batch of 1 image over 2 ranks ----
printf '%s\n' '{"dataset": {"name": "fashion_mnist", "split_ratio": {"train": 0.0000834}},' \
  ' "network": {"class": "resnet8"}, "policy": {"policy": "constant", "lr": 0.01},' \
  " \"trainer\": {\"model_dir\": \"$tmp/sbn\", \"batch_size\": 2, \"epochs\": 1," \
  '             "sync_batch_norm": true, "optimizer": {"name": "sgd", "momentum": 0.9}}}' \
  >"$tmp/sbn.json"
timeout 300 "${mpi[@]}" -np 2 "$train" --config "$tmp/sbn.json" --device cpu >"$tmp/sbn.out" 2>&1 ||
  { cat "$tmp/sbn.out"; fail "sync_batch_norm with a last global batch of 1 image"; }
grep -q "the last 1 training image(s) of each epoch are left out" "$tmp/sbn.out" ||
  { cat "$tmp/sbn.out"; fail "no line about the image left out"; }

# ---- 9. --summary once per job, --help with WORLD_SIZE set ----
timeout 120 "${mpi[@]}" -np 2 "$best_lr" "${common[@]}" --summary --log_dir="$tmp/sum" \
  >"$tmp/sum.out" 2>&1 || { cat "$tmp/sum.out"; fail "--summary under mpirun"; }
[ "$(grep -c "conv1" "$tmp/sum.out")" = 1 ] || { cat "$tmp/sum.out"; fail "--summary printed per rank"; }
WORLD_SIZE=2 "$best_lr" --help >"$tmp/help.out" 2>&1 ||
  { cat "$tmp/help.out"; fail "--help with WORLD_SIZE set: exit $?"; }
! grep -q "WORLD_SIZE" "$tmp/help.out" || { cat "$tmp/help.out"; fail "--help reported WORLD_SIZE"; }
echo "PASS dist cli"
