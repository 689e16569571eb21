#!/usr/bin/env bash
# Configures and builds Cyclone (Release) into ./build; executables land in ./bin.
# Extra arguments go to the CMake configure step (e.g. -DCYCLONE_CUDA=OFF).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
build_dir=${CYCLONE_BUILD_DIR:-build}
jobs=${CYCLONE_JOBS:-$(nproc)}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >"$build_dir.configure.log" 2>&1 \
  || { cat "$build_dir.configure.log"; exit 1; }
grep -E "Cyclone: CUDA backend" "$build_dir.configure.log" || true
cmake --build "$build_dir" -j "$jobs"
