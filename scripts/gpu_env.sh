# shellcheck shell=bash
# Sourced by scripts/gpu_run.sh and the GPU experiments (benchmarks/accuracy/run_e3.sh): makes a
# bundle from scripts/gpu_bundle.sh runnable on the GPU host. setup_libraries unpacks the bundle's
# compressed libraries and exports LD_LIBRARY_PATH with the bundle's lib/ first, then the host's
# cuDNN / cuBLAS / NCCL / CUDA runtime, wherever they are: PyTorch's nvidia-* wheels first
# (GPU.md: that is where they live), then the toolkit, then /.
# Needs: bundle (the bundle's absolute path), python (an interpreter, for site-packages and lzma).
search_roots() {
  "$python" - <<'PY' 2>/dev/null || true
import site
for p in site.getsitepackages() + [site.getusersitepackages()]:
    print(p)
PY
  echo /usr/local/cuda/lib64
  echo /usr/local/cuda/lib
  echo /usr/local/nvidia/lib64
  echo /usr/lib/x86_64-linux-gnu
}
find_lib_dir() {
  local name=$1 root hit
  while read -r root; do
    [[ -d $root ]] || continue
    hit=$(timeout 20 find "$root" \( -type f -o -type l \) -name "$name*" -print -quit \
      2>/dev/null || true)
    if [[ -n $hit ]]; then
      dirname "$hit"
      return 0
    fi
  done < <(search_roots)
  # Bounded: a name found nowhere would otherwise walk the whole image, once per name.
  hit=$(timeout 30 find / -xdev \( -type f -o -type l \) -name "$name*" -not -path '/proc/*' \
    -print -quit 2>/dev/null || true)
  [[ -n $hit ]] && dirname "$hit"
}
unresolved() {
  ldd "$bundle"/bin/* "$bundle"/tests/* "$bundle"/lib/libcyclone.so 2>/dev/null |
    awk '/not found/ {print $1}' | sort -u || true
}
# Libraries gpu_bundle.sh compressed (xz, or Python's lzma where xz is missing).
unpack_libraries() {
  local f
  for f in "$bundle"/lib/*.xz; do
    [[ -e $f ]] || continue
    if command -v xz >/dev/null; then
      xz -dkf "$f"
    else
      "$python" -c 'import lzma, shutil, sys
with lzma.open(sys.argv[1]) as src, open(sys.argv[1][:-3], "wb") as dst:
    shutil.copyfileobj(src, dst)' "$f"
    fi
  done
}
setup_libraries() {
  local name dir dirs=("$bundle/lib")
  unpack_libraries
  export LD_LIBRARY_PATH="$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # The three GPU.md names, plus whatever else ldd finds missing (cudart, cublasLt, ...).
  for name in libcudnn.so.9 libcublas.so.13 libnccl.so.2 $(unresolved); do
    dir=$(find_lib_dir "$name" || true)
    if [[ -z $dir ]]; then
      echo "not found on this host: $name"
      continue
    fi
    if [[ ":$LD_LIBRARY_PATH:" != *":$dir:"* ]]; then
      export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$dir"
      dirs+=("$dir")
    fi
    # The file behind the name says the version (NCCL's among them: cyclone_info lacks it).
    echo "$name: $dir ($(basename "$(readlink -f "$dir/$name" 2>/dev/null || echo "$name")"))"
  done
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  local left
  left=$(unresolved)
  if [[ -n $left ]]; then
    echo "still unresolved: $left"
    return 1
  fi
}
