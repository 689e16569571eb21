#!/usr/bin/env bash
# Both the normal build (scripts/build.sh, CUDA and MPI sources included where found) and the
# sanitizer builds (scripts/sanitize.sh, CPU only) compile each folder's files 16 at a time (CMake
# unity builds): names local to one .cpp (anonymous namespaces, file-level using and constants)
# must not clash with another file's of the same folder, library and tests alike, and a
# qualified name such as detail::f must not find a neighbour's namespace first. This finds such
# clashes in a couple of minutes without building: it configures both kinds of build in
# build-unity-check{,-cpu}/ and runs clang++ -fsyntax-only over each generated batch with that
# batch's flags. Adding a file shifts the batches after it, so run it after adding or renaming one.
#   scripts/unity_check.sh    # exit 1 and the compiler's errors when a batch does not compile
set -euo pipefail
cd "$(dirname "$0")/.."
unity=(-DCMAKE_CXX_COMPILER="${CXX:-clang++}" -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON)
status=0
check() {  # check <dir> <cmake args...>
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja "${unity[@]}" "$@" >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log"; exit 1; }
  echo "$dir:"
  python3 - "$dir" "${CYCLONE_JOBS:-$(nproc)}" <<'PY' || status=1
import concurrent.futures, json, os, shlex, subprocess, sys

build, jobs = sys.argv[1], int(sys.argv[2])
entries = [e for e in json.load(open(os.path.join(build, "compile_commands.json")))
           if "/Unity/" in e["file"]]
if not entries:
    sys.exit(f"{build}: no unity sources in compile_commands.json (is CMAKE_UNITY_BUILD on?)")

def check(e):
    args = shlex.split(e["command"])
    out = []
    skip = False
    for a in args:  # drop the object file and dependency outputs: only the syntax is checked
        if skip:
            skip = False
            continue
        if a in ("-o", "-MF", "-MT"):
            skip = True
            continue
        if a in ("-c", "-MD"):
            continue
        out.append(a)
    r = subprocess.run(out + ["-fsyntax-only"], cwd=e["directory"], capture_output=True, text=True)
    return e["file"], r.returncode, r.stderr

failed = 0
with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
    for f, rc, err in pool.map(check, entries):
        if rc != 0:
            failed += 1
            print(f"FAIL {os.path.relpath(f, build)}\n{err}")
print(f"unity check: {len(entries) - failed} of {len(entries)} batches compile")
sys.exit(1 if failed else 0)
PY
}
check build-unity-check  # as scripts/build.sh: CUDA, MPI and the benchmarks where available
check build-unity-check-cpu -DCYCLONE_CUDA=OFF -DCYCLONE_MPI=OFF -DCYCLONE_BUILD_BENCHMARKS=OFF
exit $status
