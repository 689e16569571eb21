#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs the whole suite with ctest, then
# the sanitizer and fuzzing step (scripts/sanitize.sh ci: the cpu tests of core, data and train
# and the fuzz targets under ASan+UBSan, the threaded tests under TSan; CYCLONE_SANITIZE_CI=0 skips
# it for a quick local run). GPU tests skip with a message on a machine without a usable GPU.
# Ends with ctest's summary of each step; when the main suite failed, its failed tests are run once
# more last, with their output, and listed (a log read from its end shows them; the exit status
# stays the first run's).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh "$@"
build_dir=${CYCLONE_BUILD_DIR:-build}
status=0
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" --timeout 900 || status=$?
failed=
if [ "$status" -ne 0 ] && [ -f "$build_dir/Testing/Temporary/LastTestsFailed.log" ]; then
  failed=$(cat "$build_dir/Testing/Temporary/LastTestsFailed.log")
fi
if [ "${CYCLONE_SANITIZE_CI:-1}" != "0" ]; then
  scripts/sanitize.sh ci || status=$((status == 0 ? 1 : status))
fi
if [ -n "$failed" ]; then
  echo "== the main suite's failed tests, run once more for their output (the status stays failed):"
  ctest --test-dir "$build_dir" --output-on-failure --timeout 900 --rerun-failed || true
  echo "== the main suite failed (ctest exit code $status) in these tests (number:name):"
  echo "$failed"
fi
exit $status
