#!/usr/bin/env bash
# Install test (tests/install/CMakeLists.txt): install, relocate, consume.
#   1. cmake --install <build> --prefix T/prefix
#   2. mv T/prefix T/moved: nothing in the package may remember where it was installed
#   3. public headers: none of the backends' cuda/ or cpu/ folders is installed, none of those
#      installed may include a CUDA header, and all of them together must compile for a consumer
#      with no CUDA include path, without a warning at -Wall -Wextra -Wpedantic when included
#      with -I; the exported target lists each include directory once
#   4. configure + build tests/install/consumer against T/moved (CMAKE_PREFIX_PATH), run it: it
#      finds libcyclone.so through the RPATH CMake derives from the imported target
#   5. the README's C++ examples (its ```cpp blocks, in order, in one function) compile in the
#      consumer at -Wall -Wextra -Werror: what a user copies must build without a warning
# Usage: run_install_test.sh --build DIR --consumer DIR [--cmake CMAKE] [--cxx CXX]
set -euo pipefail

build=''
consumer=''
cmake=cmake
cxx=c++
while (($#)); do
  case $1 in
    --build) build=$2 ;;
    --consumer) consumer=$2 ;;
    --cmake) cmake=$2 ;;
    --cxx) cxx=$2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift 2
done
[[ -n $build && -n $consumer ]] || { echo "usage: $0 --build DIR --consumer DIR" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cyclone-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "-- install into $tmp/prefix"
"$cmake" --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log"
mv "$tmp/prefix" "$tmp/moved"
prefix=$tmp/moved
libdir=$(dirname "$(find "$prefix" -name 'libcyclone.so' -print -quit)")
[[ -f $prefix/include/cyclone/cyclone.h ]] || { echo "no include/cyclone/cyclone.h" >&2; exit 1; }

# The consumer sees no CUDA toolkit: no include path from the environment either.
unset CPATH CPLUS_INCLUDE_PATH C_INCLUDE_PATH

echo "-- public headers"
# The backends' cuda/ and cpu/ folders are private: none of their headers is installed.
private=$(cd "$prefix/include" && find cyclone -type d \( -name cuda -o -name cpu \))
if [[ -n $private ]]; then
  echo "private backend folders installed:" >&2
  echo "$private" >&2
  exit 1
fi
mapfile -t headers < <(cd "$prefix/include" && find cyclone -name '*.h' | sort)
cuda_include='#include[[:space:]]*[<"](cuda|cuda_runtime|cuda_runtime_api|cublas_v2|cublasLt|cudnn|nccl|cuda_fp16|cuda_bf16)\.h'
bad=$(cd "$prefix/include" && { grep -lE "$cuda_include" "${headers[@]}" || true; })
if [[ -n $bad ]]; then
  echo "public headers that include CUDA headers:" >&2
  echo "$bad" >&2
  exit 1
fi
tu=$tmp/all_headers.cpp
for h in "${headers[@]}"; do echo "#include \"$h\""; done >"$tu"
echo "${#headers[@]} headers"
# A consumer that reaches the headers with -I (a Makefile, or NO_SYSTEM_FROM_IMPORTED) sees their
# warnings: there must be none, even at -Wall -Wextra -Wpedantic.
"$cxx" -std=c++20 -Wall -Wextra -Wpedantic -Werror -fsyntax-only -I "$prefix/include" "$tu" ||
  { echo "the public headers warn for a consumer including them with -I" >&2; exit 1; }

# The exported target names each include directory once.
targets=$(find "$prefix" -name 'CycloneTargets.cmake' -print -quit)
dirs=$(sed -n 's/^ *INTERFACE_INCLUDE_DIRECTORIES "\(.*\)"$/\1/p' "$targets" | tr ';' '\n')
if [[ -n $(sort <<<"$dirs" | uniq -d) ]]; then
  echo "$targets lists an include directory twice: $dirs" >&2
  exit 1
fi

# The README's ```cpp blocks: #include and using lines at file scope, the rest in one function,
# in order (the second block uses the first's `dev`).
readme=$(cd "$(dirname "$0")/../.." && pwd)/README.md
examples=$tmp/readme_examples.cpp
awk '/^```cpp$/ {on = 1; next} /^```$/ {on = 0} on' "$readme" >"$tmp/readme_blocks"
[[ -s $tmp/readme_blocks ]] || { echo "no \`\`\`cpp block in $readme" >&2; exit 1; }
{
  grep -E '^(#include|using namespace)' "$tmp/readme_blocks" | sort -u
  echo '[[maybe_unused]] static void readme_examples() {'
  grep -vE '^(#include|using namespace)' "$tmp/readme_blocks"
  echo '}'
} >"$examples"

echo "-- consumer"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
"$cmake" -S "$consumer" -B "$tmp/consumer" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$prefix" -DCYCLONE_ALL_HEADERS_TU="$tu" -DCYCLONE_README_TU="$examples" \
  >"$tmp/configure.log" || { cat "$tmp/configure.log"; exit 1; }
grep -q "Cyclone_DIR:PATH=$prefix/" "$tmp/consumer/CMakeCache.txt" ||
  { echo "find_package found a Cyclone outside $prefix" >&2; exit 1; }
"$cmake" --build "$tmp/consumer" -j 2 >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }

# The app must run by RPATH alone (no LD_LIBRARY_PATH), and load the moved libcyclone.
env -u LD_LIBRARY_PATH "$tmp/consumer/app"
loaded=$(env -u LD_LIBRARY_PATH ldd "$tmp/consumer/app" | awk '$1 ~ /^libcyclone/ {print $3}')
if [[ $(dirname "$loaded") != "$libdir" ]]; then
  echo "app loads libcyclone from '$loaded', not from the moved prefix $libdir" >&2
  exit 1
fi
echo "-- install test passed"
