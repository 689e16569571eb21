#!/usr/bin/env python3
"""benchmarks/kernel_breakdown.py on a stand-in Nsight Compute CSV: ncu's own lines before the
header, the units row (ns), a few set-up kernels, then three identical steps. What the GPU run's
summary relies on: the last step found by its repetition, each kernel's time summed over its
launches, the categories, and one clear line (non-zero exit) for a file that is not ncu's CSV.

usage: test_kernel_breakdown.py KERNEL_BREAKDOWN_PY
"""
import gzip
import os
import subprocess
import sys
import tempfile

HEADER = '"ID","Process ID","Kernel Name","Block Size","gpu__time_duration.sum"\n'
UNITS = '"","","","","ns"\n'
STEP = [("sm90_xmma_fprop_implicit_gemm_bf16", 1000), ("normalize_kernel<bf16, 8>", 300),
        ("backward_dx_kernel<bf16, 8>", 500), ("transpose_kernel<ushort>", 200),
        ("transpose_kernel<ushort>", 100), ("fused_kernel<0, float>", 60)]
SETUP = [("fill_kernel<float>", 9999), ("random_kernel", 7777)]


def csv_text(rows):
    lines = ["==PROF== Connected to process 1\n", "==WARNING== unmodified clocks\n", HEADER, UNITS]
    for i, (name, ns) in enumerate(rows):
        lines.append(f'"{i}","1","{name}","(256, 1, 1)","{ns:,}"\n')
    return "".join(lines)


def run(tool, path, *args):
    return subprocess.run([sys.executable, tool, path, *args], capture_output=True, text=True,
                          timeout=60)


def main():
    tool = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory() as d:
        good = os.path.join(d, "ncu.csv.gz")
        with gzip.open(good, "wt") as f:
            f.write(csv_text(SETUP + STEP * 3))
        r = run(tool, good)
        assert r.returncode == 0, r.stderr
        out = r.stdout.splitlines()
        # One step: 2160 ns = 2.16 us, 6 kernels; the set-up kernels are not in it.
        assert out[0] == "total 2.2 us (the last step: 6 kernels)", out
        cats = {l.split()[0]: float(l.split()[1]) for l in out[1:5]}
        assert cats == {"conv/gemm": 1.0, "batchnorm": 0.8, "other": 0.3, "optimizer": 0.1}, cats
        # The two transposes of a step are one row of 2 launches; the rows are longest first.
        kernels = out[5:]
        assert kernels[0].split()[:4] == ["1.0", "us", "1x", "conv/gemm"], kernels
        transpose = next(l for l in kernels if "transpose_kernel" in l)
        assert transpose.split()[:3] == ["0.3", "us", "2x"], transpose
        assert not any("fill_kernel" in l or "random_kernel" in l for l in kernels), kernels
        assert len(run(tool, good, "--top", "2").stdout.splitlines()) == 5 + 2

        # No repetition: every kernel, said so.
        once = os.path.join(d, "once.csv")
        with open(once, "w") as f:
            f.write(csv_text(STEP))
        r = run(tool, once)
        assert r.returncode == 0 and "no repeated step found" in r.stdout.splitlines()[0], r

        # Not ncu's CSV, a missing file: one line naming the file, non-zero exit.
        bad = os.path.join(d, "bad.csv")
        with open(bad, "w") as f:
            f.write("==ERROR== the profiler could not attach\n")
        for path in (bad, os.path.join(d, "missing.csv")):
            r = run(tool, path)
            assert r.returncode != 0 and path in r.stderr and len(r.stderr.splitlines()) == 1, r
            assert "Traceback" not in r.stderr, r.stderr
    print("kernel_breakdown.py: ok")


if __name__ == "__main__":
    main()
