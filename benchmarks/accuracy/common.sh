# shellcheck shell=bash
# Sourced by the run_e*.sh scripts: one training run with its raw logs kept.
#   run_one <label> <config> <seed> <log dir>
# runs ./bin/train --config <config> --seed <seed> --log_dir <log dir>, stdout and stderr to
# <log dir>/stdout.log; checkpoints and TensorBoard files are deleted (the CSV/JSON logs stay).
# TRAIN_BIN replaces ./bin/train (e.g. a GPU bundle's), RUN_ONE_ARGS adds flags (--device=cuda).
# OpenBLAS's AVX2 kernels, pinned where the CPU has them: the committed logs were made with them,
# and AVX-512 kernels round differently in the last bits, enough to move a range test's suggestion
# (scripts/run.sh says more). Set OPENBLAS_CORETYPE yourself to choose otherwise.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
  export OPENBLAS_CORETYPE=Haswell
fi
run_one() {
  local label=$1 config=$2 seed=$3 dir=$4
  echo "$label -> $dir"
  local extra=()
  read -r -a extra <<<"${RUN_ONE_ARGS:-}"
  "${TRAIN_BIN:-./bin/train}" --config "$config" --seed "$seed" --log_dir "$dir" "${extra[@]}" \
    >"$dir/stdout.log" 2>&1 ||
    { tail -5 "$dir/stdout.log"; exit 1; }
  rm -rf "$dir/checkpoints" "$dir/tensorboard_logs"
  tail -1 "$dir/stdout.log"
}
# A fresh log directory.
fresh_dir() {
  rm -rf "$1"
  mkdir -p "$1"
}
# run_grid <id> "<variant ...>" <seed ...>: run_one for every variant x seed, each variant's config
# benchmarks/accuracy/<id>/<variant>.json (all checked before the first run), its logs
# benchmarks/accuracy/logs/<id>/<variant>/seed<k>.
run_grid() {
  local id=$1 variant seed dir
  local -a variants
  read -r -a variants <<<"$2"
  shift 2
  for variant in "${variants[@]}"; do
    [ -f "benchmarks/accuracy/$id/$variant.json" ] ||
      { echo "$(basename "$0"): no config benchmarks/accuracy/$id/$variant.json" >&2; exit 2; }
  done
  for variant in "${variants[@]}"; do
    for seed in "$@"; do
      dir=benchmarks/accuracy/logs/$id/$variant/seed$seed
      fresh_dir "$dir"
      run_one "$id $variant seed $seed" "benchmarks/accuracy/$id/$variant.json" "$seed" "$dir"
    done
  done
}
# The GPU experiments' train: with CYCLONE_BUNDLE set (a GPU host, scripts/gpu_bundle.sh's
# bundle), the bundle's bin/train, its libraries and the host's cuDNN / cuBLAS set up as
# scripts/gpu_run.sh sets them up; else TRAIN_BIN or ./bin/train (built if missing). Runs get
# --device=cuda unless RUN_ONE_ARGS says otherwise.
gpu_train_bin() {
  if [ -n "${CYCLONE_BUNDLE:-}" ]; then
    bundle=$(cd "$CYCLONE_BUNDLE" && pwd)
    python=${PYTHON:-python3}
    source scripts/gpu_env.sh
    setup_libraries
    export TRAIN_BIN=$bundle/bin/train
  fi
  [ -n "${TRAIN_BIN:-}" ] || [ -x bin/train ] || scripts/build.sh
  export RUN_ONE_ARGS=${RUN_ONE_ARGS:---device=cuda}
}
# run_gpu_experiment <id> "<default variants>" [seed ...]: gpu_train_bin, then run_grid over
# $<id>_VARIANTS (else the defaults) and the seeds (else 0): run_e2.sh and run_e3.sh.
run_gpu_experiment() {
  local id=$1 defaults=$2
  shift 2
  gpu_train_bin
  local var=${id}_VARIANTS
  local -a seeds=("$@")
  [ ${#seeds[@]} -gt 0 ] || seeds=(0)
  run_grid "$id" "${!var:-$defaults}" "${seeds[@]}"
}
