#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs the whole suite with ctest.
# GPU tests skip with a message on a machine without a usable GPU. Ends with ctest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh "$@"
build_dir=${CYCLONE_BUILD_DIR:-build}
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" --timeout 900
