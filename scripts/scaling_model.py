#!/usr/bin/env python3
"""Expected data-parallel step time and speed-up (docs/data_parallel.md's model).

    T(N) = T_compute + max(0, 2 (N-1)/N * S / busbw + latency * buckets - overlap * T_compute)

Give the measured single-GPU step time (cyclone_bench's BM_*_train_step cases) and the measured ring
bus bandwidth (cyclone_bench_allreduce's busbw for the WRN-28-10 gradient), e.g.

    python3 scripts/scaling_model.py --compute-ms 95 --busbw 400 --ranks 2 4 8
    python3 scripts/scaling_model.py --compute-ms 95 --busbw 45 --ranks 16 64 --bytes 146e6
"""
import argparse
import math


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--compute-ms", type=float, required=True, help="one step's compute on one GPU (ms)")
    p.add_argument("--busbw", type=float, required=True, help="ring all-reduce bus bandwidth (GB/s)")
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--bytes", type=float, default=36479194 * 4, help="gradient bytes (WRN-28-10: 146 MB)")
    p.add_argument("--bucket-mb", type=float, default=25, help="bucket size (MiB)")
    p.add_argument("--latency-us", type=float, default=30, help="per-collective latency (us)")
    p.add_argument("--overlap", type=float, default=0.6,
                   help="fraction of the compute the all-reduce can hide behind (the backward pass)")
    a = p.parse_args()
    if a.compute_ms <= 0 or a.busbw <= 0 or a.bytes <= 0 or not 0 <= a.overlap <= 1:
        p.error("compute-ms, busbw and bytes must be > 0, overlap in [0, 1]")
    buckets = math.ceil(a.bytes / (a.bucket_mb * 2**20))
    print(f"{'ranks':>5} {'allreduce_ms':>13} {'exposed_ms':>11} {'step_ms':>9} {'speedup':>8} {'efficiency':>10}")
    for n in a.ranks:
        if n < 1:
            p.error("ranks must be >= 1")
        ar = 0.0 if n == 1 else 2 * (n - 1) / n * a.bytes / (a.busbw * 1e9) * 1e3 + buckets * a.latency_us / 1e3
        exposed = max(0.0, ar - a.overlap * a.compute_ms)
        step = a.compute_ms + exposed
        speedup = n * a.compute_ms / step
        print(f"{n:>5} {ar:>13.2f} {exposed:>11.2f} {step:>9.2f} {speedup:>8.2f} {speedup / n:>10.1%}")


if __name__ == "__main__":
    main()
