#!/usr/bin/env bash
# Installs what building and testing Cyclone needs, from Debian's packages, when it is missing.
# The CUDA toolkit (nvcc, cuBLAS, cuDNN) is not a Debian package here: when /usr/local/cuda is
# absent the build simply has no CUDA backend (CYCLONE_CUDA=AUTO).
set -euo pipefail

packages=(cmake ninja-build g++ pkg-config nlohmann-json3-dev libopenblas-dev libgtest-dev
          libgmock-dev libbenchmark-dev zlib1g-dev libcurl4-openssl-dev libarchive-dev libssl-dev libyaml-cpp-dev
          clang libclang-rt-dev openmpi-bin libopenmpi-dev
          dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install_deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python test helpers (PyPI): the reference readers our files are checked against.
if command -v python3 >/dev/null && ! python3 -c "import safetensors, numpy, tensorboard" 2>/dev/null; then
  echo "install_deps: installing the Python test helpers (safetensors, numpy, tensorboard)"
  python3 -m pip install --quiet safetensors numpy tensorboard 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages safetensors numpy tensorboard
fi
