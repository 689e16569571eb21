# Sourced by the run_e*.sh scripts: one training run with its raw logs kept.
#   run_one <label> <config> <seed> <log dir>
# runs ./bin/train --config <config> --seed <seed> --log_dir <log dir>, stdout and stderr to
# <log dir>/stdout.log; checkpoints and TensorBoard files are deleted (the CSV/JSON logs stay).
run_one() {
  local label=$1 config=$2 seed=$3 dir=$4
  echo "$label -> $dir"
  ./bin/train --config "$config" --seed "$seed" --log_dir "$dir" >"$dir/stdout.log" 2>&1 ||
    { tail -5 "$dir/stdout.log"; exit 1; }
  rm -rf "$dir/checkpoints" "$dir/tensorboard_logs"
  tail -1 "$dir/stdout.log"
}
# A fresh log directory.
fresh_dir() {
  rm -rf "$1"
  mkdir -p "$1"
}
