#!/usr/bin/env bash
# Cyclone's tests under sanitizers (issue 14; tests/RELIABILITY.md). Each kind is a separate CPU
# build in build-<kind>/ with its own bin/ (./bin keeps the normal build's), then ctest. Any report
# stops the test that made it (halt_on_error): a finding fails the run.
#   scripts/sanitize.sh asan   # ASan+UBSan over the whole cpu-labelled suite (g++ or clang; long)
#   scripts/sanitize.sh tsan   # TSan over the threaded tests: the data loader's workers and the
#                              # thread pool (label tsan: one executable of core, kernels, data)
#   scripts/sanitize.sh fuzz   # clang: ASan+UBSan+libFuzzer coverage in every object; the cpu
#                              # tests of every folder, the fuzz targets' corpus replays, and each
#                              # fuzz target for CYCLONE_FUZZ_SECONDS (label slow)
#   scripts/sanitize.sh ci     # what the test command runs after the main suite: fuzz, then tsan
# The fuzz kind is CI's ASan+UBSan run: one build (clang -O1, unity) serves the gtest suites and the
# fuzzers. SANITIZE_FOLDERS picks test folders (default all). Left out for time: the end-to-end
# scripts (train.apps_cli, train.crash_consistency, train.full_disk, train.determinism_cli, fetch.*,
# install.*), which the asan kind runs (tests/RELIABILITY.md has its last figures);
# train.limits_cli (ulimit -v) and train.ulimits_cli (ulimit -f, -n, -s) in none.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-asan}
jobs=${CYCLONE_JOBS:-$(nproc)}
export ASAN_OPTIONS=halt_on_error=1:abort_on_error=0:detect_leaks=1:strict_string_checks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

# Without MPI: OpenMPI's own start-up allocations read as leaks to LeakSanitizer and its
# shared-memory transport as races to TSan; the dist tests run as a world of one here (the same
# code but the MPI calls), and under mpirun in the main suite.
configure() {  # configure <dir> <cmake args...>
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja -DCYCLONE_CUDA=OFF -DCYCLONE_MPI=OFF -DCYCLONE_BUILD_BENCHMARKS=OFF \
    -DCYCLONE_BIN_DIR="$PWD/$dir/bin" -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16 \
    "$@" >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; exit 1; }
}

run_asan() {
  configure build-asan -DCMAKE_BUILD_TYPE=Release -DCYCLONE_SANITIZE=address,undefined
  cmake --build build-asan -j "$jobs"
  # Not train.limits_cli: it runs the apps under ulimit -v, and ASan's shadow memory (terabytes of
  # address space) cannot be reserved under any such limit. Nor train.ulimits_cli: its stack and
  # descriptor limits are sized for the normal build, and ASan's frames and runtime need more.
  ctest --test-dir build-asan --output-on-failure -j "$jobs" --timeout 1800 -L cpu \
    -E "^train\\.u?limits_cli$"
}

run_tsan() {
  configure build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCYCLONE_SANITIZE=thread \
    -DCYCLONE_BUILD_APPS=OFF
  cmake --build build-tsan -j "$jobs" --target cyclone_tests_threads
  ctest --test-dir build-tsan --output-on-failure -j "$jobs" --timeout 900 -L tsan
}

run_fuzz() {
  local cxx
  cxx=$(command -v clang++ || true)
  if [ -z "$cxx" ]; then
    echo "sanitize.sh fuzz: clang++ is missing (scripts/install_deps.sh installs clang and libclang-rt-dev)" >&2
    exit 1
  fi
  configure build-fuzz -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_CXX_FLAGS_RELEASE="-O1 -gline-tables-only" -DCYCLONE_SANITIZE=address,undefined \
    -DCYCLONE_FUZZ=ON
  local folders=(${SANITIZE_FOLDERS:-core kernels layers models optim data schedulers dist train})
  cmake --build build-fuzz -j "$jobs"
  # Sanitizer builds name gtest cases <folder>.Suite.Case (tests/CMakeLists.txt).
  local regex="^fuzz\\."
  for f in "${folders[@]}"; do regex+="|^${f}\\."; done
  ctest --test-dir build-fuzz --output-on-failure -j "$jobs" --timeout 900 -L "cpu|slow" \
    -R "$regex" -E "^train\\.(apps_cli|crash_consistency|full_disk|determinism_cli|limits_cli|ulimits_cli)$"
}

case "$kind" in
  asan) run_asan ;;
  tsan) run_tsan ;;
  fuzz) run_fuzz ;;
  ci) run_fuzz; run_tsan ;;
  *) echo "sanitize.sh: unknown kind '$kind' (asan, tsan, fuzz or ci)" >&2; exit 2 ;;
esac
