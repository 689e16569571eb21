#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs the whole suite with ctest, then
# the sanitizer and fuzzing step (scripts/sanitize.sh ci: the cpu tests of core, data and train
# and the fuzz targets under ASan+UBSan, the threaded tests under TSan; CYCLONE_SANITIZE_CI=0 skips
# it for a quick local run). GPU tests skip with a message on a machine without a usable GPU.
# Ends with ctest's summary of each step.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh "$@"
build_dir=${CYCLONE_BUILD_DIR:-build}
status=0
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" --timeout 900 || status=$?
if [ "${CYCLONE_SANITIZE_CI:-1}" != "0" ]; then
  scripts/sanitize.sh ci || status=1
fi
exit $status
