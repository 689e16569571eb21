#!/usr/bin/env python3
"""Our safetensors files against the reference implementation (PyPI `safetensors` + numpy).

Cyclone writes a file that safetensors.numpy must load with the right names, dtypes, shapes and
values; safetensors.numpy writes one that Cyclone must load the same way.
Usage: safetensors_interop.py <path to safetensors_peer>
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
from safetensors.numpy import load_file, save_file


def expected():
    return {
        "layer.weight": (np.arange(24, dtype=np.float32) * 0.5 - 3).reshape(2, 3, 4),
        "ids": np.arange(5, dtype=np.int32) * 7 - 10,
        "consts": np.array([3.141592653589793, -2.718281828459045], dtype=np.float64),
    }


def main():
    peer = sys.argv[1]
    with tempfile.TemporaryDirectory() as d:
        ours = os.path.join(d, "cyclone.safetensors")
        subprocess.run([peer, "write", ours], check=True)
        loaded = load_file(ours)
        want = expected()
        assert set(loaded) == set(want), f"names {sorted(loaded)} != {sorted(want)}"
        for name, value in want.items():
            got = loaded[name]
            assert got.dtype == value.dtype, f"{name}: dtype {got.dtype} != {value.dtype}"
            assert got.shape == value.shape, f"{name}: shape {got.shape} != {value.shape}"
            assert np.array_equal(got, value), f"{name}: values differ"
        theirs = os.path.join(d, "python.safetensors")
        save_file(want, theirs, metadata={"producer": "python"})
        subprocess.run([peer, "check", theirs], check=True)
    print("safetensors interop: 3 tensors each way match")


if __name__ == "__main__":
    main()
