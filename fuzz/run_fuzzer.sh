#!/usr/bin/env bash
# Fuzzes one libFuzzer target for a bounded time, starting from its committed inputs:
#   run_fuzzer.sh TARGET SECONDS CORPUS_DIR [MORE_DIRS...]
# New inputs go to a scratch directory (never into the source tree). On a crash it prints the
# reproducer's path and keeps it; commit it under tests/fuzz/<target>/regressions/ once fixed.
# Prints libFuzzer's final statistics (executions, coverage) either way.
set -uo pipefail
target=$1 seconds=$2
shift 2
scratch=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-$(basename "$target").XXXXXX")
log=$scratch/fuzz.log
mkdir -p "$scratch/new" "$scratch/artifacts"
"$target" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
  -seed=1 -print_final_stats=1 -artifact_prefix="$scratch/artifacts/" "$scratch/new" "$@" \
  >"$log" 2>&1
rc=$?
grep -E "^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|stat::peak_rss_mb)|^Done|cov: .*(INITED|DONE)" "$log"
if [ $rc -ne 0 ]; then
  tail -n 80 "$log"
  echo "run_fuzzer: $(basename "$target") failed (exit $rc); reproducer(s) kept in $scratch/artifacts:"
  ls -l "$scratch/artifacts"
  exit 1
fi
rm -rf "$scratch"
echo "run_fuzzer: $(basename "$target"): no crash in ${seconds} s"
