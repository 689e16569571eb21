#!/usr/bin/env bash
# Data-parallel runs through the front door, on CPUs with MPI (ctest dist.cli):
#   mpirun -np 2 ./bin/best_lr ...
# 1. 2 ranks with batch 32 train to the same weights as 1 rank with batch 64 (10 steps of SGD with
#    momentum on Fashion-MNIST), and only rank 0 prints and writes;
# 2. the linear scaling rule scales a given rate by the number of ranks, with warmup, and leaves
#    the range test's rate as found, also when the run is resumed;
# 3. ranks started with different flags stop at once, naming the rank and the flag;
# 4. a rank killed with SIGKILL takes the job down, and mpirun names it;
# 5. a rank that stops answering (SIGSTOP) makes the others time out (CYCLONE_DIST_TIMEOUT) and
#    end the job with a message naming the operation, instead of hanging;
# 6. RANK / WORLD_SIZE without mpirun, and srun starting several tasks itself, are refused with
#    what to do;
# 7. what a job refuses before any work (exit 2, nothing written): ranks with different settings
#    that change the steps (a phase's too), an absurd --lr_warmup_epochs; a bad
#    CYCLONE_DIST_TIMEOUT on one rank ends the job with one line instead of hanging;
# 8. synchronized batch norm with a last global batch of fewer images than ranks;
# 9. --summary prints once per job; --help with WORLD_SIZE set prints help and exits 0;
# 10. a snapshot ensemble (SGDR) over 2 ranks trains and scores as 1 rank does, its members
#     written once;
# 11. a multi-phase config (a precomputed head, then every layer at its group's rate) over 2
#     ranks ends with 1 rank's weights, resumes by skipping its finished phases, and scales a
#     phase's own rate but not an lr_find phase's;
# 12. SIGTERM to the ranks stops them at one step with a checkpoint, exit 0.
set -uo pipefail
best_lr=$1
mpirun=$2
train=${3:-$(dirname "$best_lr")/train}
python=${PYTHON:-python3}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi=("$mpirun" --oversubscribe --bind-to none)
fail() {
  echo "FAIL: $*"
  exit 1
}
# The test scores: the first 4 batches of 256 test images (the same images on any number of ranks).
common=(--dataset=fashion_mnist --num_epochs=1 --limit_train_batches=10 --limit_eval_batches=4 --workers=1 --no_plots
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
"$python" "$here/same_weights.py" "1 x 64 / 2 x 32" "$tmp/one" "$tmp/two" --accuracy ||
  fail "the weights of 2 ranks x 32 differ from 1 rank x 64"
"$python" - "$tmp/two/summary.json" <<'PY' || fail "summary.json does not say 2 ranks, global batch 64"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["ranks"] == 2 and s["global_batch_size"] == 64, s
PY

# ---- 1b. synchronized batch norm: 2 x 16 with --sync_bn trains a ResNet as 1 x 32 does ----
bn=(--model=resnet8 --limit_train_batches=2 --skip_test=0.05 --save_model)
timeout 300 "${mpi[@]}" -np 1 "$best_lr" "${common[@]}" "${bn[@]}" --batch_size=32 \
  --log_dir="$tmp/bn1" >"$tmp/bn1.out" 2>&1 || { cat "$tmp/bn1.out"; fail "resnet8, 1 rank"; }
timeout 300 "${mpi[@]}" -np 2 "$best_lr" "${common[@]}" "${bn[@]}" --batch_size=16 --sync_bn \
  --lr_scaling=none --log_dir="$tmp/bn2" >"$tmp/bn2.out" 2>&1 ||
  { cat "$tmp/bn2.out"; fail "resnet8, 2 ranks, --sync_bn"; }
grep -q "synchronized batch norm in 7 layer(s)" "$tmp/bn2.out" || { cat "$tmp/bn2.out"; fail "no sync_bn line"; }
"$python" "$here/same_weights.py" "sync_bn 1 x 32 / 2 x 16" "$tmp/bn1" "$tmp/bn2" ||
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
# A run whose rate came from the range test resumes at that rate, not scaled again.
timeout 300 "${mpi[@]}" -np 2 "$best_lr" "${common[@]}" --batch_size=32 --log_dir="$tmp/found" \
  >"$tmp/found.out" 2>&1 || { cat "$tmp/found.out"; fail "range test + 1 epoch, 2 ranks"; }
timeout 300 "${mpi[@]}" -np 2 "$best_lr" "${common[@]}" --num_epochs=2 --batch_size=32 \
  --log_dir="$tmp/found" --resume="$tmp/found/checkpoints" >"$tmp/found2.out" 2>&1 ||
  { cat "$tmp/found2.out"; fail "resumed, 2 ranks"; }
grep -q "the range test ran at the global batch: its rate is used as found" "$tmp/found2.out" ||
  { cat "$tmp/found2.out"; fail "the resumed run scaled the range test's rate"; }
"$python" - "$tmp/found/history.csv" <<'PY' || fail "the resumed epoch's rate differs from the first's"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 2 and rows[0]["lr"] == rows[1]["lr"], rows
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
# Rank 1 is killed (5, stopped) once the training starts: the ranks' wait while the data loads has
# no deadline (a download may take minutes), so a rank stopped then would hang the job, by design.
# (A fixed 4 s wait can fall within the loading on a busy machine.)
after_first_step='for _ in $(seq 1 1200); do grep -q "^best_lr: training " "$STEP_LOG" 2>/dev/null && break; sleep 0.1; done'
STEP_LOG="$tmp/killed.out" timeout 120 "${mpi[@]}" -x STEP_LOG -np 2 sh -c \
  'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then ('"$after_first_step"'; kill -9 $$) & fi; exec "$0" "$@"' \
  "$best_lr" "${common[@]}" --limit_train_batches=0 --num_epochs=3 --skip_test=0.05 \
  --batch_size=32 --log_dir="$tmp/killed" >"$tmp/killed.out" 2>&1
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || { cat "$tmp/killed.out"; fail "killed rank: exit $rc"; }
[ $((SECONDS - start)) -lt 100 ] || fail "the job took too long to end after a rank died"
grep -q "rank 1 with PID" "$tmp/killed.out" || { cat "$tmp/killed.out"; fail "the dead rank is not named"; }

# ---- 5. a rank that stops answering ----
start=$SECONDS
CYCLONE_DIST_TIMEOUT=5.5 STEP_LOG="$tmp/hung.out" timeout 120 "${mpi[@]}" -x CYCLONE_DIST_TIMEOUT \
  -x STEP_LOG -np 2 sh -c \
  'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then ('"$after_first_step"'; kill -STOP $$) & fi; exec "$0" "$@"' \
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
# srun starting 2 tasks itself (each would train alone on the same GPU into the same files).
SLURM_STEP_NUM_TASKS=2 SLURM_PROCID=1 "$best_lr" "${common[@]}" --skip_test=0.05 --log_dir="$tmp/srun" \
  >"$tmp/srun.out" 2>&1
rc=$?
[ $rc -eq 1 ] || { cat "$tmp/srun.out"; fail "srun with 2 tasks: exit $rc"; }
grep -q "started by srun as task 1 of 2 (SLURM_STEP_NUM_TASKS=2), not by mpirun.*mpirun -np 2 <program>" \
  "$tmp/srun.out" || { cat "$tmp/srun.out"; fail "no srun message"; }
[ "$(wc -l <"$tmp/srun.out")" = 1 ] || { cat "$tmp/srun.out"; fail "srun: more than one line"; }
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
  " \"trainer\": {\"model_dir\": \"$tmp/sbn\", \"batch_size\": 2, \"epochs\": 1, \"limit_eval_batches\": 2," \
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
# ---- 10. a snapshot ensemble: SGDR with a restart after epoch 1, 1 x 64 and 2 x 32 ----
sg=(--dataset=fashion_mnist --num_epochs=2 --limit_train_batches=10 --limit_eval_batches=4 --workers=1 --no_plots
    --device=cpu --optimizer=sgd --momentum=0.9 --skip_test=0.05 --cycle --policy=sgdr
    --step_size_epochs=0.5 --lr_scaling=none --save_model)
timeout 300 "${mpi[@]}" -np 1 "$best_lr" "${sg[@]}" --batch_size=64 --log_dir="$tmp/sg1" \
  >"$tmp/sg1.out" 2>&1 || { cat "$tmp/sg1.out"; fail "sgdr snapshot ensemble, 1 rank"; }
timeout 300 "${mpi[@]}" -np 2 "$best_lr" "${sg[@]}" --batch_size=32 --log_dir="$tmp/sg2" \
  >"$tmp/sg2.out" 2>&1 || { cat "$tmp/sg2.out"; fail "sgdr snapshot ensemble, 2 ranks"; }
[ "$(grep -c "snapshot ensemble of 2: test loss" "$tmp/sg2.out")" = 1 ] ||
  { cat "$tmp/sg2.out"; fail "the ensemble's score should be printed once"; }
"$python" "$here/same_weights.py" "sgdr 1 x 64 / 2 x 32" "$tmp/sg1" "$tmp/sg2" ||
  fail "sgdr: the weights of 2 ranks x 32 differ from 1 rank x 64"
"$python" - "$tmp/sg1" "$tmp/sg2" <<'PY' || fail "the snapshot ensemble of 2 ranks x 32 differs from 1 rank x 64"
import json, os, sys
one, two = sys.argv[1], sys.argv[2]
s1, s2 = (json.load(open(d + "/summary.json")) for d in (one, two))
e1, e2 = s1["ensemble"], s2["ensemble"]
print(f"ensemble of {len(s2['snapshots'])}: 1 rank {e1}, 2 ranks {e2}")
assert len(s2["snapshots"]) == 2 and all(os.path.exists(p) for p in s2["snapshots"]), s2
assert e2["samples"] == e1["samples"] == 1024, (e1, e2)
assert abs(e1["accuracy"] - e2["accuracy"]) < 2e-3 and abs(e1["loss"] - e2["loss"]) < 1e-3, (e1, e2)
PY

# ---- 11. a multi-phase config: 1 x 64 and 2 x 32, a resume, and the scaling rule per phase ----
phases_config() {  # $1 model_dir, $2 batch size, $3 lr_scaling, $4 the phases
  printf '%s\n' '{"dataset": {"name": "fashion_mnist", "split_ratio": {"train": 0.05}},' \
    ' "network": {"class": "lenet5"}, "lr_finder": {"num_steps": 30},' \
    " \"trainer\": {\"model_dir\": \"$1\", \"batch_size\": $2, \"lr_scaling\": \"$3\"," \
    '  "lr_warmup_epochs": 0, "optimizer": {"name": "sgd", "momentum": 0.9},' \
    "  \"phases\": $4}, \"save_model\": true}"
}
two_phases='[{"name": "head", "freeze": ["conv1", "conv2"], "precompute": true, "epochs": 1,
              "policy": {"policy": "constant", "lr": 0.05}},
             {"name": "all", "lr_mult": {"conv1": 0.5}, "epochs": 1,
              "policy": {"policy": "one_cycle", "max_lr": 0.05, "total_epochs": 1}}]'
phases_config "$tmp/ph1" 64 none "$two_phases" >"$tmp/ph1.json"
phases_config "$tmp/ph2" 32 none "$two_phases" >"$tmp/ph2.json"
pt=(--device cpu --limit_train_batches 10 --limit_eval_batches 4)
timeout 300 "${mpi[@]}" -np 1 "$train" --config "$tmp/ph1.json" "${pt[@]}" >"$tmp/ph1.out" 2>&1 ||
  { cat "$tmp/ph1.out"; fail "phases, 1 rank"; }
timeout 300 "${mpi[@]}" -np 2 "$train" --config "$tmp/ph2.json" "${pt[@]}" >"$tmp/ph2.out" 2>&1 ||
  { cat "$tmp/ph2.out"; fail "phases, 2 ranks"; }
[ "$(grep -c "all 2 phases done" "$tmp/ph2.out")" = 1 ] ||
  { cat "$tmp/ph2.out"; fail "the phases' end should be printed once"; }
grep -q "precompute: stages conv1..conv2 ran once over 3000 + 1024 images (split over 2 ranks)" \
  "$tmp/ph2.out" || { cat "$tmp/ph2.out"; fail "the precompute should be split over the 2 ranks"; }
"$python" "$here/same_weights.py" "phases 1 x 64 / 2 x 32" "$tmp/ph1" "$tmp/ph2" --accuracy ||
  fail "phases: the weights of 2 ranks x 32 differ from 1 rank x 64"
"$python" - "$tmp/ph2" <<'PY' || fail "the phases of 2 ranks did not finish as 1 rank's"
import json, os, sys
two = sys.argv[1]
for name in ("head", "all"):
    assert os.path.exists(f"{two}/{name}/phase_done.json"), name
s2 = json.load(open(two + "/summary.json"))
assert s2["status"] == "completed" and s2["ranks"] == 2, s2
PY
timeout 300 "${mpi[@]}" -np 2 "$train" --config "$tmp/ph2.json" "${pt[@]}" --resume "$tmp/ph2" \
  >"$tmp/ph2r.out" 2>&1 || { cat "$tmp/ph2r.out"; fail "phases, 2 ranks, resumed"; }
[ "$(grep -c "was done: skipped (resuming)" "$tmp/ph2r.out")" = 2 ] ||
  { cat "$tmp/ph2r.out"; fail "the resumed job should skip both finished phases, printed once each"; }
# Ranks whose phases differ stop before any work, naming the phase's setting.
phases_config "$tmp/mm" 32 none "$two_phases" >"$tmp/mm0.json"
phases_config "$tmp/mm" 32 none "$(sed 's/"lr": 0.05/"lr": 0.07/' <<<"$two_phases")" >"$tmp/mm1.json"
timeout 120 "${mpi[@]}" -np 2 sh -c 'exec "$0" --config "$1$OMPI_COMM_WORLD_RANK.json" --device cpu' \
  "$train" "$tmp/mm" >"$tmp/mm.out" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -qF 'phases[0].policy (rank 0: ' "$tmp/mm.out" ||
  { cat "$tmp/mm.out"; fail "ranks with different phases: exit $rc, not 2 naming phases[0].policy"; }
[ ! -e "$tmp/mm" ] || { ls -R "$tmp/mm"; fail "ranks with different phases left files"; }
# The scaling rule: the phase with its own rate runs at 2 x 0.05, the finder's rate as found.
found_phases='[{"name": "find", "lr_find": true},
               {"name": "given", "freeze": ["conv1"], "epochs": 1,
                "policy": {"policy": "constant", "lr": 0.05}},
               {"name": "found", "epochs": 1, "policy": {"policy": "constant", "lr": "finder/10"}}]'
phases_config "$tmp/ph3" 32 linear "$found_phases" >"$tmp/ph3.json"
timeout 300 "${mpi[@]}" -np 2 "$train" --config "$tmp/ph3.json" "${pt[@]}" >"$tmp/ph3.out" 2>&1 ||
  { cat "$tmp/ph3.out"; fail "phases with a range test, 2 ranks"; }
"$python" - "$tmp/ph3" <<'PY' || { cat "$tmp/ph3.out"; fail "a phase's rate is not scaled by the rule"; }
import csv, json, sys
d = sys.argv[1]
s = json.load(open(d + "/summary.json"))
chosen = s["chosen_lr"]
given = list(csv.DictReader(open(d + "/given/history.csv")))[-1]
found = list(csv.DictReader(open(d + "/found/history.csv")))[-1]
print(f"chosen {chosen}: phase 'given' lr {given['lr']}, phase 'found' lr {found['lr']}")
assert abs(float(given["lr"]) - 0.1) < 1e-9, given
assert abs(float(found["lr"]) - chosen / 10) < 1e-9 * chosen, (found, chosen)
lr_scale = {p["name"]: p.get("lr_scale") for p in s["phases"]}
assert lr_scale["given"] == 2 and lr_scale["found"] == 1, lr_scale
PY
# ---- 12. SIGTERM to the ranks (what a scheduler sends every process of a job) ----
# Every rank stops at the same step, rank 0 writes checkpoints/interrupted, the job exits 0. (The
# anchored pattern signals the ranks, not mpirun: docs/data_parallel.md says why.)
timeout 300 "${mpi[@]}" -np 2 "$best_lr" "${common[@]}" --limit_train_batches=0 --num_epochs=3 \
  --skip_test=0.05 --batch_size=32 --log_dir="$tmp/term" >"$tmp/term.out" 2>&1 &
job=$!
for _ in $(seq 1 240); do
  grep -q "^epoch 1/3 .*img/s" "$tmp/term.out" && break
  sleep 0.5
done
pkill -TERM -f "^$best_lr .*--log_dir=$tmp/term"
wait "$job"
rc=$?
[ $rc -eq 0 ] || { cat "$tmp/term.out"; fail "SIGTERM to the ranks: exit $rc, not 0"; }
[ "$(grep -c "interrupted at step .* checkpoint written to $tmp/term/checkpoints/interrupted" "$tmp/term.out")" = 1 ] &&
  [ -s "$tmp/term/checkpoints/interrupted/trainer.json" ] ||
  { cat "$tmp/term.out"; ls -R "$tmp/term"; fail "SIGTERM to the ranks: no interrupted checkpoint, said once"; }
echo "PASS dist cli"
