#!/usr/bin/env bash
# What ./bin/best_lr and ./bin/train do with their log dir: outputs that cannot be written are
# refused before any work; a new run removes what an earlier run left there (a --resume keeps
# it); a resume with nothing left to train says so; a run that writes nothing leaves no folder;
# a resumed run's summary keeps the earlier part (time, a phase's best score). Tiny runs.
#   test_log_dir_cli.sh <best_lr> <train> <python3>
set -uo pipefail
best_lr=$1 train=$2 py=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() {  # check <description> <command...>
  local what=$1; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi
}
expect_exit() {  # expect_exit <code> <grep pattern for stderr> <command...>
  local code=$1 pattern=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ "$rc" -ne "$code" ]; then
    echo "FAIL exit $rc (want $code): $*"; head -5 "$tmp/err"; fail=1; return
  fi
  if [ -n "$pattern" ] && ! grep -q -- "$pattern" "$tmp/err" "$tmp/out"; then
    echo "FAIL output lacks '$pattern': $*"; cat "$tmp/err" "$tmp/out"; fail=1; return
  fi
  if [ "$code" -ne 0 ] && [ "$(wc -l <"$tmp/err")" -ne 1 ]; then
    echo "FAIL want one line on stderr: $*"; cat "$tmp/err"; fail=1; return
  fi
  echo "ok   exit $code: ${*:2}"
}
fm=/usr/share/datasets/fashion-mnist
[ -d "$fm" ] || { echo "FAIL $fm missing"; exit 1; }
export OPENBLAS_NUM_THREADS=1
tiny=(--dataset=fashion_mnist --data_dir=$fm --no_download --batch_size=64 --limit_train_batches=3
      --limit_eval_batches=1 --workers=1 --device=cpu --no_plots)
fixed=("${tiny[@]}" --skip_test=0.01)

# ---- an output path that cannot be written: refused before the data is read ----
mkdir -p "$tmp/d1/summary.json"
expect_exit 1 "cannot write $tmp/d1/summary.json: it is a directory, not a file; remove or rename it, or choose another --log_dir" \
  "$best_lr" "${fixed[@]}" --log_dir="$tmp/d1"
check "nothing ran before the refusal" bash -c "! grep -q 'training' '$tmp/out'"
mkdir -p "$tmp/d2" && : >"$tmp/d2/checkpoints"
expect_exit 1 "cannot create the directory $tmp/d2/checkpoints: it is a file, not a directory" \
  "$best_lr" "${fixed[@]}" --log_dir="$tmp/d2"
mkdir -p "$tmp/d3" && : >"$tmp/d3/tensorboard_logs"
expect_exit 1 "$tmp/d3/tensorboard_logs: it is a file" "$best_lr" "${fixed[@]}" --log_dir="$tmp/d3"
: >"$tmp/afile"
expect_exit 1 "cannot create the directory $tmp/afile/run: $tmp/afile is a file, not a directory" \
  "$best_lr" "${fixed[@]}" --log_dir="$tmp/afile/run"
# A range-test plot named into a folder (microDL's fig_fname) is checked too, and its folder made.
mkdir -p "$tmp/fig" && : >"$tmp/fig/plots"
fig_config() {  # fig_config <model_dir> <fig_fname>
  printf '{"dataset": {"name": "fashion_mnist", "data_dir": "%s", "download": false}, "trainer": {"model_dir": "%s", "batch_size": 64, "max_epochs": 1, "limit_train_batches": 3, "limit_eval_batches": 1, "callbacks": {"LearningRateScheduler": {"lr_find": true, "fig_fname": "%s"}}}}\n' "$fm" "$1" "$2"
}
fig_config "$tmp/fig" plots/lr.svg >"$tmp/fig.json"
expect_exit 1 "cannot create the directory $tmp/fig/plots: it is a file, not a directory" \
  "$train" --config "$tmp/fig.json" --device cpu
fig_config "$tmp/fig2" plots/range/lr.svg >"$tmp/fig2.json"
expect_exit 0 "" "$train" --config "$tmp/fig2.json" --device cpu
check "the plot's folder was made" [ -s "$tmp/fig2/plots/range/lr.svg" ]
# An empty folder, from the flag or the config: refused, where the flag was taken as not given
# (the config's folder written instead) and the config's gave a bare "Invalid argument".
expect_exit 2 "train: --log_dir is empty: give a value or leave the flag out" \
  "$train" --config "$tmp/fig2.json" --device cpu --log_dir=
expect_exit 2 "train: --log_dir is empty" "$train" --config "$tmp/fig2.json" --log_dir ""
fig_config "" lr.svg >"$tmp/empty_dir.json"
expect_exit 2 "trainer.model_dir is empty: give the folder the run writes to" \
  "$train" --config "$tmp/empty_dir.json" --device cpu
mkdir -p "$tmp/d4/model_checkpoint.safetensors"
expect_exit 1 "cannot write $tmp/d4/model_checkpoint.safetensors: it is a directory" \
  "$best_lr" "${fixed[@]}" --log_dir="$tmp/d4"

# ---- a run that writes nothing leaves no folder ----
expect_exit 0 "" "$best_lr" --summary --dataset=fashion_mnist --log_dir="$tmp/sum/deeper"
check "--summary created no log dir" [ ! -e "$tmp/sum" ]
expect_exit 1 "$tmp/nowhere" "$best_lr" --dataset=mnist --data_dir="$tmp/nowhere" --no_download \
  --skip_test=0.1 --log_dir="$tmp/nodata"
check "a failed data load left no log dir" [ ! -e "$tmp/nodata" ]

# ---- a new run in a used folder: the earlier run's files go, a line says which ----
run=$tmp/run
"$best_lr" "${tiny[@]}" --num_learning_batches=6 --lr_finder_repeats=2 --log_dir="$run" >"$tmp/r1.out" 2>&1
check "first run wrote lr_finder_2.csv and an event file" bash -c "[ -s '$run/lr_finder_2.csv' ] && ls '$run/tensorboard_logs' | grep -q tfevents"
echo keep >"$run/notes.txt"
"$best_lr" "${fixed[@]}" --num_epochs=2 --log_dir="$run" >"$tmp/r2.out" 2>&1
rc=$?
check "second run exits 0 (got $rc)" [ "$rc" -eq 0 ]
check "the line says what was removed" grep -q "best_lr: a new run in $run: removed the earlier run's .*lr_finder.csv, lr_finder_2.csv" "$tmp/r2.out"
check "no range-test file of the first run is left" bash -c "! ls '$run' | grep -q lr_finder"
check "one TensorBoard event file, this run's" [ "$(ls "$run/tensorboard_logs" | grep -c tfevents)" -eq 1 ]
check "a file that is not Cyclone's is kept" [ -s "$run/notes.txt" ]

# ---- resume: nothing left to train, or fewer epochs than done ----
expect_exit 0 "is at epoch 2 of 2: nothing to train (give a larger --num_epochs" \
  "$best_lr" "${fixed[@]}" --num_epochs=2 --log_dir="$run" --resume="$run/checkpoints"
check "nothing was trained" bash -c "! grep -q 'training' '$tmp/out'"
expect_exit 2 "is at epoch 2, past --num_epochs 1: give --num_epochs 3 or more to train on" \
  "$best_lr" "${fixed[@]}" --num_epochs=1 --log_dir="$run" --resume="$run/checkpoints"
# A resumed run's summary: this part's wall_seconds and the total with the earlier run's.
"$best_lr" "${fixed[@]}" --num_epochs=3 --log_dir="$run" --resume="$run/checkpoints" >"$tmp/r3.out" 2>&1
check "the resumed summary adds the earlier run's time" "$py" -c "
import json; s = json.load(open('$run/summary.json'))
assert s['total_wall_seconds'] > s['wall_seconds'] > 0, s"
# Resumed into another folder, the summary goes on from the run that wrote the checkpoint.
rt=$tmp/rt
"$best_lr" "${tiny[@]}" --num_learning_batches=6 --num_epochs=1 --log_dir="$rt" >"$tmp/rt1.out" 2>&1
"$best_lr" "${tiny[@]}" --num_learning_batches=6 --num_epochs=2 --log_dir="$rt-more" \
  --resume="$rt/checkpoints" >"$tmp/rt2.out" 2>&1
rc=$?
check "a resume into another folder exits 0 (got $rc)" [ "$rc" -eq 0 ]
check "its summary keeps the range test and the chosen rate" "$py" -c "
import json; a = json.load(open('$rt/summary.json')); b = json.load(open('$rt-more/summary.json'))
assert b['chosen_lr'] == a['chosen_lr'] and b['chosen_lr'] > 0, (a['chosen_lr'], b['chosen_lr'])
assert b['lr_finder'] == a['lr_finder'], b
assert b['total_wall_seconds'] > b['wall_seconds'], b"
# A run that did not finish is not replaced by a new one started by mistake.
latest=$(cat "$run/checkpoints/latest")
mv "$run/checkpoints/$latest" "$run/checkpoints/interrupted" && echo interrupted >"$run/checkpoints/latest"
expect_exit 2 "holds the checkpoint of a run that did not finish ($run/checkpoints/interrupted): continue it with --resume $run/checkpoints" \
  "$best_lr" "${fixed[@]}" --log_dir="$run"
rm "$run/checkpoints/interrupted/model.safetensors"
expect_exit 1 "$run/checkpoints/interrupted/model.safetensors is missing" \
  "$best_lr" "${fixed[@]}" --num_epochs=4 --log_dir="$run" --resume="$run/checkpoints"

# ---- a phase resumed mid-way keeps its best score from before the interruption ----
printf '{"dataset": {"name": "fashion_mnist", "data_dir": "%s", "download": false}, "trainer": {"model_dir": "%s", "batch_size": 64, "limit_train_batches": 3, "limit_eval_batches": 1, "checkpoint_every": 1, "keep_checkpoints": 5, "phases": [{"name": "a", "epochs": 2, "policy": {"policy": "constant", "lr": 0.01}}]}}\n' \
  "$fm" "$tmp/ph" >"$tmp/ph.json"
"$train" --config "$tmp/ph.json" --device cpu >"$tmp/ph1.out" 2>&1
rc=$?
check "phase run exits 0 (got $rc)" [ "$rc" -eq 0 ]
# As if stopped after epoch 1, when its best (made 0.99 here) was recorded in summary.json.
"$py" - "$tmp/ph" <<'PY'
import json, sys
d = sys.argv[1]
s = json.load(open(d + "/summary.json"))
s["status"] = "interrupted"; s["phases"][0]["status"] = "interrupted"; s["phases"][0]["best_accuracy"] = 0.99
json.dump(s, open(d + "/summary.json", "w"))
open(d + "/a/checkpoints/latest", "w").write("epoch-0001\n")
PY
rm "$tmp/ph/a/phase_done.json"
"$train" --config "$tmp/ph.json" --device cpu --resume "$tmp/ph" >"$tmp/ph2.out" 2>&1
rc=$?
check "phase resume exits 0 (got $rc)" [ "$rc" -eq 0 ]
check "the resumed phase's best includes the epochs before the stop" "$py" -c "
import json; s = json.load(open('$tmp/ph/summary.json'))
assert s['phases'][0]['best_accuracy'] == 0.99, s['phases'][0]"
exit $fail
