#!/usr/bin/env python3
"""Kernel-time breakdown of one training step, from Nsight Compute's raw CSV.

scripts/gpu_run.sh profiles a few steps of bin/cyclone_bench_train under
    ncu --clock-control none --graph-profiling node --metrics gpu__time_duration.sum --csv --page raw
(every kernel node of every graph replay is one row). The steps repeat the same kernels, so the
last step is the longest tail of the kernel sequence that equals the stretch just before it; this
prints that step's time per category and per kernel, longest first:

    total 18998.3 us (901 kernels)
    conv/gemm    8611.9 us
    ...
       3702.1 us   25x  batchnorm  backward_dx_kernel<...>

Categories (category() below; benchmarks/pytorch/profile_step.py uses the same for PyTorch's
step): conv/gemm (cuDNN, cuBLAS and CUTLASS kernels), batchnorm, optimizer, other.

usage: kernel_breakdown.py NCU.csv[.gz] [--top N]
"""
import argparse
import collections
import csv
import gzip
import io
import sys


def category(name):
    n = name.lower()
    if any(s in n for s in ("xmma", "cutlass", "conv", "implicit", "cudnn", "nvjet", "gemm",
                            "wgrad", "dgrad", "fprop", "sm90_", "sm80_")):
        return "conv/gemm"
    if any(s in n for s in ("batch_norm", "batchnorm", "norm_", "stats_partial", "stats_finalize",
                            "backward_partial", "backward_finalize", "backward_dx",
                            "normalize_kernel")):
        return "batchnorm"
    if any(s in n for s in ("optim", "multi_tensor", "sgd", "adam", "fused_kernel")):
        return "optimizer"
    return "other"


def read_rows(path):
    """(kernel name, microseconds) per profiled kernel, in launch order."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", newline="") as f:
        text = f.read()
    # ncu prints its own lines (==PROF==, warnings) before the CSV header.
    start = text.find('"ID",')
    if start < 0:
        raise SystemExit(f"kernel_breakdown.py: {path} has no ncu CSV header (\"ID\",...): was it "
                         "written by ncu --csv --page raw?")
    reader = csv.DictReader(io.StringIO(text[start:]))
    if "Kernel Name" not in (reader.fieldnames or []) or \
            "gpu__time_duration.sum" not in (reader.fieldnames or []):
        raise SystemExit(f"kernel_breakdown.py: {path} lacks the 'Kernel Name' or "
                         "'gpu__time_duration.sum' column (ncu --metrics gpu__time_duration.sum)")
    rows = []
    unit = 1e-3  # ncu reports ns by default
    for r in reader:
        if not r["ID"].strip().isdigit():  # the units row
            u = r.get("gpu__time_duration.sum", "").strip()
            unit = {"ns": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3,
                    "nsecond": 1e-3}.get(u, unit)
            continue
        rows.append((r["Kernel Name"], float(r["gpu__time_duration.sum"].replace(",", "")) * unit))
    if not rows:
        raise SystemExit(f"kernel_breakdown.py: {path} holds no kernel rows")
    return rows


def last_step(names):
    """Length of the last step: the longest k with names[-k:] == names[-2k:-k] (0 if none)."""
    for k in range(len(names) // 2, 0, -1):
        if names[-k:] == names[-2 * k:-k]:
            return k
    return 0


def breakdown(rows, top=40):
    names = [n for n, _ in rows]
    k = last_step(names)
    # A period that is itself periodic (k = 2 j) is two steps: the shortest repeating unit is one.
    while k and k % 2 == 0 and names[-k // 2:] == names[-k:-k // 2]:
        k //= 2
    if k == 0:
        k = len(rows)
        note = "no repeated step found: all kernels"
    else:
        note = f"the last step: {k} kernels"
    step = rows[-k:]
    per, count, cat = collections.Counter(), collections.Counter(), collections.Counter()
    for name, us in step:
        per[name] += us
        count[name] += 1
        cat[category(name)] += us
    lines = [f"total {sum(per.values()):.1f} us ({note})"]
    lines += [f"{c:10s} {us:10.1f} us" for c, us in cat.most_common()]
    lines += [f"{us:10.1f} us {count[n]:4d}x  {category(n):9s}  {n}" for n, us in
              per.most_common(top)]
    return "\n".join(lines)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("csv")
    p.add_argument("--top", type=int, default=40)
    a = p.parse_args(argv)
    try:
        print(breakdown(read_rows(a.csv), a.top))
    except OSError as e:
        raise SystemExit(f"kernel_breakdown.py: {a.csv}: {e.strerror}")


if __name__ == "__main__":
    main(sys.argv[1:])
