#!/usr/bin/env bash
# Builds Cyclone for the GPU hosts (GPU.md) and assembles dist-bundle/, the folder a GPU run carries:
#   dist-bundle/bin/      cyclone_bench, cyclone_info and the other programs
#   dist-bundle/tests/    the gtest executables (cyclone_tests_*)
#   dist-bundle/lib/      libcyclone.so* and the non-CUDA shared libraries they load (OpenBLAS,
#                         gfortran, quadmath, benchmark, curl, libarchive with libxml2 and ICU,
#                         ...), found with ldd; those over 1 MiB as .xz, which gpu_run.sh unpacks
#   dist-bundle/ompi.tar.xz  Debian's Open MPI (mpirun and what it loads), relocatable
#   dist-bundle/MANIFEST  git revision, compiler, architectures, source path, file list
# Release, sm_90 only, stripped: the bundle and the repository's files together (what a run
# carries) must stay under 64 MiB.
# The GPU host provides the driver, the CUDA runtime, cuBLAS, cuDNN and NCCL (PyTorch's wheels) and
# the C/C++ runtime (its glibc and libstdc++ are newer than this machine's), so none of those is
# copied; scripts/gpu_run.sh points LD_LIBRARY_PATH at them there.
#
# Like scripts/build.sh, a unity build (16 C++ files at a time; CYCLONE_UNITY=0 builds file by
# file): the .cu files compile one by one either way under Debian 12's CMake 3.25 (CMake 3.31 and
# later batch them too, which scripts/unity_check.sh checks).
#
# Usage (from anywhere): scripts/gpu_bundle.sh     env: JOBS (default 2), CYCLONE_GPU_BUILD
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
build=${CYCLONE_GPU_BUILD:-build-gpu}
jobs=${JOBS:-2}
dist="dist-bundle"
limit_mib=64

unity=(-DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16)
[ "${CYCLONE_UNITY:-1}" != "0" ] || unity=(-DCMAKE_UNITY_BUILD=OFF)
# A separate build folder and bin folder, so the bundle never replaces the developer's ./bin.
cmake -S . -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release "${unity[@]}" \
  -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DCYCLONE_CUDA=ON \
  -DCYCLONE_BUILD_TESTS=ON \
  -DCYCLONE_BUILD_BENCHMARKS=ON \
  -DCYCLONE_BUILD_APPS=ON \
  -DCYCLONE_BIN_DIR="$repo/$build/bin"
cmake --build "$build" -j "$jobs"

rm -rf "$dist"
mkdir -p "$dist/bin" "$dist/tests" "$dist/lib"

shopt -s nullglob
for f in "$build"/bin/*; do
  [[ -f $f && -x $f ]] && cp "$f" "$dist/bin/"
done
for f in "$build"/tests/cyclone_tests_*; do
  [[ -f $f && -x $f ]] && cp "$f" "$dist/tests/"
done
cp -P "$build"/lib/libcyclone.so* "$dist/lib/"
shopt -u nullglob

# Libraries the host provides: CUDA and its libraries, and the C/C++ runtime.
# glibc's own parts (libresolv, libnsl, ...) too: they import GLIBC_PRIVATE symbols of this
# machine's libc, which the host's newer one need not have.
host_provided='^(libcuda|libcudart|libcublas|libcublasLt|libcudnn[a-z_]*|libnccl|libnvrtc|libnvJitLink|libcufft|libcurand|libcusolver|libcusparse|libnvToolsExt|libc|libm|libdl|libpthread|librt|libutil|libresolv|libnsl|libanl|libmvec|ld-linux-x86-64|libstdc\+\+|libgcc_s|libcyclone)\.so'
objects=("$dist"/bin/* "$dist"/tests/* "$build"/lib/libcyclone.so)
# ldd exits non-zero when one argument is not dynamic; the list is what matters.
ldd_out=$(ldd "${objects[@]}" 2>/dev/null || true)
missing=$(awk '/not found/ {print $1}' <<<"$ldd_out" | sort -u)
if [[ -n $missing ]]; then
  # Not found here means not found there either: better to stop than to ship a broken bundle.
  echo "gpu_bundle: unresolved libraries here: $missing" >&2
  exit 1
fi
while read -r name path; do
  [[ -z $name || $name =~ $host_provided ]] && continue
  cp -L "$path" "$dist/lib/$name"
  echo "bundled $name (from $path)"
done < <(awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' <<<"$ldd_out" | sort -u)

# Strip what we built and what we copied (Debian's libraries are mostly stripped already).
strip --strip-unneeded "$dist"/bin/* "$dist"/tests/* 2>/dev/null || true
for f in "$dist"/lib/*; do
  [[ -L $f ]] || strip --strip-unneeded "$f" 2>/dev/null || true
done

# Debian's OpenBLAS carries kernels for every x86 CPU (36 MB, 4 MB as xz), ICU's data is 31 MB:
# libraries over 1 MiB travel compressed (libcyclone too), and gpu_run.sh unpacks them next to
# the others before anything runs.
for f in "$dist"/lib/*; do
  if [[ ! -L $f ]] && (($(stat -c %s "$f") > 1048576)); then
    xz -T2 -6 "$f"
    echo "compressed $(basename "$f") to $(du -h "$f.xz" | cut -f1)"
  fi
done

# Debian's Open MPI, for mpirun on the GPU host (which may have none, or another MPI): orterun,
# orted, the MCA and PMIx plugins, help texts and the libraries they need beyond lib/, laid out as
# under /usr so that OPAL_PREFIX relocates it anywhere (gpu_run.sh's nccl step). 2.6 MB as xz.
ompi_stage=$(mktemp -d)
if command -v orterun >/dev/null && [[ -d /usr/lib/x86_64-linux-gnu/openmpi ]]; then
  r=$ompi_stage/ompi
  mkdir -p "$r/bin" "$r/lib/x86_64-linux-gnu" "$r/share" "$r/etc" "$r/extra-lib"
  cp "$(command -v orterun)" "$(command -v orted)" "$r/bin/"
  ln -s orterun "$r/bin/mpirun"
  cp -a /usr/lib/x86_64-linux-gnu/openmpi "$r/lib/x86_64-linux-gnu/"
  rm -rf "$r/lib/x86_64-linux-gnu/openmpi/include"
  [[ -d /usr/lib/x86_64-linux-gnu/pmix2 ]] && cp -a /usr/lib/x86_64-linux-gnu/pmix2 "$r/lib/x86_64-linux-gnu/"
  cp -a /usr/share/openmpi "$r/share/"
  cp -a /etc/openmpi/. "$r/etc/" 2>/dev/null || true
  for f in /usr/lib/x86_64-linux-gnu/libmca_common_*.so.?? /usr/lib/x86_64-linux-gnu/libpmix.so.2 \
    /usr/lib/x86_64-linux-gnu/libnuma.so.1; do
    [[ -e $f ]] && cp -L "$f" "$r/extra-lib/"
  done
  tar -C "$ompi_stage" -cJf "$dist/ompi.tar.xz" ompi
  echo "packed Open MPI to $(du -h "$dist/ompi.tar.xz" | cut -f1)"
else
  echo "gpu_bundle: no Open MPI here (orterun); the bundle goes without mpirun"
fi
rm -rf "$ompi_stage"

{
  echo "cyclone GPU bundle"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
  echo "git: $(git rev-parse HEAD 2>/dev/null || echo 'no commit'), $(git status --porcelain 2>/dev/null | wc -l) changed files"
  echo "nvcc: $(nvcc --version 2>/dev/null | tail -n 1 || echo '?')"
  echo "cmake: build type Release, CUDA architectures 90"
  # Tests find their fixtures through __FILE__, i.e. this path: gpu_run.sh links it to the
  # repository's place on the host.
  echo "source: $repo"
  echo "files:"
  (cd "$dist" && find . -type f -o -type l | sort | sed 's/^/  /')
} >"$dist/MANIFEST"

# What a run carries: the bundle and the repository's files (tracked and untracked, not ignored).
bundle_bytes=$(du -sb "$dist" | cut -f1)
tree_bytes=$(git ls-files -z -co --exclude-standard | du -cb --files0-from=- 2>/dev/null |
  awk 'END {print $1 + 0}')
bytes=$((bundle_bytes + tree_bytes))
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
du -sh "$dist"/bin "$dist"/tests "$dist"/lib
echo "gpu_bundle: $dist is $(mib "$bundle_bytes") MiB, with the repository's files" \
  "$(mib "$bytes") MiB (limit $limit_mib MiB for everything a run carries)"
if ((bytes >= limit_mib * 1048576)); then
  echo "gpu_bundle: too large to carry" >&2
  exit 1
fi
