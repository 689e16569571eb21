#!/usr/bin/env python3
"""Side-by-side table of cyclone_bench and the PyTorch reference, measured on the same host.

    python3 benchmarks/compare.py bench.json torch.json [--markdown]

bench.json: `cyclone_bench --benchmark_format=json` (with or without --benchmark_repetitions; with
repetitions the median aggregate is used, else the mean per iteration). torch.json: the output of
benchmarks/pytorch/kernels.py (median per case). The ratio is cyclone time / PyTorch time: under 1
means Cyclone is faster. Cases missing on one side or failed show why instead of a ratio.
"""

import argparse
import json
import sys

UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
SUFFIXES = ("/manual_time", "/real_time")


def base_name(name):
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def load_cyclone(path):
    """name -> {"s": seconds, "peak_frac": ..., "error": ...}."""
    with open(path) as f:
        data = json.load(f)
    plain, medians, order = {}, {}, []
    for b in data.get("benchmarks", []):
        name = base_name(b.get("run_name", b["name"]))
        if name not in order:
            order.append(name)
        entry = {}
        if b.get("error_occurred"):
            entry["error"] = b.get("error_message", "error")
        else:
            entry["s"] = b["real_time"] * UNIT_SECONDS[b.get("time_unit", "ns")]
            for key in ("peak_frac", "FLOP/s", "bytes/s"):
                if key in b:
                    entry[key] = b[key]
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                medians[name] = entry
        elif name not in plain or "error" in entry:
            # With repetitions and no aggregates-only, keep the first plain run (or its error).
            plain.setdefault(name, entry)
    plain.update(medians)
    return data.get("context", {}), {n: plain[n] for n in order if n in plain}


def load_torch(path):
    with open(path) as f:
        data = json.load(f)
    out = {}
    for b in data.get("benchmarks", []):
        if "error" in b:
            out[b["name"]] = {"error": b["error"]}
        else:
            out[b["name"]] = {"s": b["median_s"]}
    return data.get("context", {}), out


def fmt_time(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.3f} ms"
    return f"{s:.3f} s"


def fmt_rate(entry):
    if "FLOP/s" in entry:
        return f"{entry['FLOP/s'] / 1e12:.2f} TFLOP/s" if entry["FLOP/s"] >= 1e11 else \
            f"{entry['FLOP/s'] / 1e9:.1f} GFLOP/s"
    if "bytes/s" in entry:
        return f"{entry['bytes/s'] / 1e9:.1f} GB/s"
    return "-"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cyclone_json")
    parser.add_argument("torch_json", nargs="+", help="one or more PyTorch result files "
                        "(kernels.py, models.py), merged")
    parser.add_argument("--markdown", action="store_true", help="a Markdown table")
    args = parser.parse_args()

    try:
        cctx, cyc = load_cyclone(args.cyclone_json)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        # An empty or cut bench.json (cyclone_bench failed or was stopped): one line, not a trace.
        sys.exit(f"compare.py: {args.cyclone_json}: not a readable cyclone_bench JSON "
                 f"({type(e).__name__}: {e})")
    tctx, ref = {}, {}
    for path in args.torch_json:
        try:
            ctx, cases = load_torch(path)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            print(f"compare.py: no PyTorch numbers from {path} ({type(e).__name__}: {e})",
                  file=sys.stderr)
            continue
        tctx = tctx or ctx
        ref.update(cases)

    print(f"cyclone: device {cctx.get('cyclone_device', '?')}, host {cctx.get('host_name', '?')}, "
          f"{cctx.get('date', '?')}, peaks from {cctx.get('cyclone_peak_source', '?')}")
    if tctx:
        print(f"pytorch: {tctx.get('torch', '?')} (CUDA {tctx.get('cuda')}, cuDNN "
              f"{tctx.get('cudnn')}), device {tctx.get('device_name', 'cpu')}, "
              f"{tctx.get('cpu_threads')} CPU threads")
    print("ratio = cyclone time / pytorch time (under 1: cyclone faster)\n")

    names = list(cyc) + [n for n in ref if n not in cyc]
    rows = [("case", "cyclone", "pytorch", "ratio", "cyclone rate", "of peak")]
    for name in names:
        c, t = cyc.get(name, {}), ref.get(name, {})
        cs, ts = c.get("s"), t.get("s")
        if cs is not None and ts:
            ratio = f"{cs / ts:.2f}"
        elif "error" in c:
            ratio = "cyclone error: " + c["error"]
        elif name not in ref:
            ratio = "no torch"
        elif name not in cyc:
            ratio = "no cyclone"
        else:
            ratio = "pytorch error: " + t.get("error", "?")
        frac = f"{c['peak_frac'] * 100:.1f}%" if "peak_frac" in c else "-"
        rows.append((name, fmt_time(cs), fmt_time(ts), ratio, fmt_rate(c), frac))

    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, r in enumerate(rows):
        if args.markdown:
            print("| " + " | ".join(r) + " |")
            if k == 0:
                print("|" + "|".join("---" for _ in r) + "|")
        else:
            print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
