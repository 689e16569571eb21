#!/usr/bin/env bash
# The CPU test suite under sanitizers (issue 14): a separate build in build-<kind>/ with its
# executables in build-<kind>/bin (./bin keeps the normal build's), then ctest.
#   scripts/sanitize.sh asan   # address,undefined over the cpu-labelled tests
#   scripts/sanitize.sh tsan   # thread, over the threaded tests (loader, thread pool, trainer)
# Any report stops the test that made it (halt_on_error): a finding fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-asan}
case "$kind" in
  asan) flags=address,undefined; filter=() ;;
  tsan) flags=thread; filter=(-R "Loader|Parallel|ThreadPool|Trainer|Prefetch") ;;
  *) echo "sanitize.sh: unknown kind '$kind' (asan or tsan)" >&2; exit 2 ;;
esac
dir=build-$kind
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCYCLONE_CUDA=OFF \
  -DCYCLONE_SANITIZE=$flags -DCYCLONE_BUILD_BENCHMARKS=OFF -DCYCLONE_BIN_DIR="$PWD/$dir/bin" \
  >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; exit 1; }
cmake --build "$dir" -j "${CYCLONE_JOBS:-$(nproc)}"
export ASAN_OPTIONS=halt_on_error=1:abort_on_error=0:detect_leaks=1:strict_string_checks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
ctest --test-dir "$dir" --output-on-failure -j "$(nproc)" --timeout 1800 -L cpu "${filter[@]}"
