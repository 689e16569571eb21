#!/usr/bin/env bash
# Both the normal build (scripts/build.sh, CUDA and MPI sources included where found) and the
# sanitizer builds (scripts/sanitize.sh, CPU only) compile each folder's files 16 at a time (CMake
# unity builds): names local to one .cpp (anonymous namespaces, file-level using and constants)
# must not clash with another file's of the same folder, library and tests alike, and a
# qualified name such as detail::f must not find a neighbour's namespace first. This finds such
# clashes in a couple of minutes without building: it configures both kinds of build in
# build-unity-check{,-cpu}/ and runs clang++ -fsyntax-only over each generated batch with that
# batch's flags. CMake batches CUDA sources only from 3.31 on (Debian 12 has 3.25), so the .cu
# files of each folder are batched here the same way (16 at a time, in source order) and run
# through nvcc's front end (-cuda), which is what a newer CMake would compile. Adding a file
# shifts the batches after it, so run it after adding or renaming one.
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
commands = json.load(open(os.path.join(build, "compile_commands.json")))
entries = [e for e in commands if "/Unity/" in e["file"]]
if not entries:
    sys.exit(f"{build}: no unity sources in compile_commands.json (is CMAKE_UNITY_BUILD on?)")

# CUDA sources CMake compiled one by one: batches of 16 per target (its object folder), each a
# generated file of #includes compiled with the first member's flags.
def target_of(e):
    args = shlex.split(e["command"])
    return os.path.basename(os.path.dirname(args[args.index("-o") + 1]).split(".dir/")[0])
by_target = {}
for e in commands:
    if e["file"].endswith(".cu") and "/Unity/" not in e["file"]:
        by_target.setdefault(target_of(e), []).append(e)
cuda_unity = os.path.abspath(os.path.join(build, "cuda-unity"))
os.makedirs(cuda_unity, exist_ok=True)
for target, members in sorted(by_target.items()):
    members.sort(key=lambda e: e["file"])
    for i in range(0, len(members), 16):
        batch = members[i:i + 16]
        name = os.path.join(cuda_unity, f"{target}_unity_{i // 16}_cu.cu")
        with open(name, "w") as f:
            f.writelines(f'#include "{e["file"]}"\n' for e in batch)
        args = shlex.split(batch[0]["command"])
        at = args.index(batch[0]["file"])
        args[at] = name
        entries.append({"directory": batch[0]["directory"], "file": name, "cuda": True,
                        "command": shlex.join(args)})

def check(e):
    args = shlex.split(e["command"])
    if e.get("cuda"):  # nvcc's front end only: -cuda writes the host code, no object
        args = ["-cuda" if a == "-c" else a for a in args]
        args[args.index("-o") + 1] = os.devnull
        r = subprocess.run(args, cwd=e["directory"], capture_output=True, text=True)
        return e["file"], r.returncode, r.stderr
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
