#!/usr/bin/env bash
# The run command: builds if needed, then runs the main program. Until ./bin/best_lr exists this is
# ./bin/mlp_demo: a small MLP trained on synthetic data, printing its loss as it falls.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
if [ -x bin/best_lr ]; then
  exec bin/best_lr "$@"
fi
exec bin/mlp_demo "$@"
