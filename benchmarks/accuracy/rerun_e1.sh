#!/usr/bin/env bash
# Reproducibility of E1 (issue 13: "a rerun of any E1 row with its seed on the same kind of
# machine reproduces its accuracy to within half a point"): reruns one E1 config and seed with
# the current binary into logs/E1-rerun/<policy>/seed<seed>; aggregate.py puts the rerun beside
# the original run in the README.
#   benchmarks/accuracy/rerun_e1.sh <policy> <seed>      (e.g. one_cycle 0)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -eq 2 ] || { echo "usage: $0 <policy: constant|step_decay|triangular|one_cycle> <seed>" >&2; exit 2; }
[ -f "benchmarks/accuracy/E1/$1.json" ] || { echo "$0: no E1 config '$1'" >&2; exit 2; }
[ -x bin/train ] || scripts/build.sh
source benchmarks/accuracy/common.sh
dir=benchmarks/accuracy/logs/E1-rerun/$1/seed$2
fresh_dir "$dir"
run_one "E1 rerun $1 seed $2" "benchmarks/accuracy/E1/$1.json" "$2" "$dir"
python3 benchmarks/accuracy/aggregate.py
