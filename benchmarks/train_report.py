#!/usr/bin/env python3
"""Merged results and a side-by-side table of the end-to-end training benchmark.

    python3 benchmarks/train_report.py cyclone_train.json torch_train.json \\
        [--out merged.json] [--markdown] [--check-targets]

cyclone_train.json: bin/cyclone_bench_train's output; torch_train.json: benchmarks/pytorch/train.py's.
Both are {"device", "driver", "cuda", "cudnn", "torch"?, "git_rev", "date", "runs": [row, ...]},
a row being {"workload", "engine", "precision", "ms_per_step", "images_per_s", "peak_mem_mb", ...}
or {"workload", "engine", "precision", "error"}. Every row of the Cyclone file is a Cyclone row,
whatever its engine name. Either file may lack rows.

The PyTorch reference of a Cyclone row is the eager PyTorch row of the same workload and
precision: pytorch-eager for fp32 and tf32, pytorch-amp-channels-last (eager autocast) for bf16.
ratio = PyTorch ms_per_step / Cyclone ms_per_step, so above 1 means Cyclone is faster.

--out: the Cyclone file's machine fields (PyTorch's where it has none) plus PyTorch's "torch" version, and "runs" = the rows of
both files, each Cyclone row with a reference given "ratio_vs_pytorch_eager_same_precision".
--markdown (the default when nothing else is asked): one line per workload; "—" where a side has no
row, "err" where its row is an error. --check-targets: the issue's throughput targets, met or not;
with --gemm-bench BENCH_JSON (cyclone_bench's Google Benchmark output holding BM_gemm/cuda/bf16/N)
also the bf16 one: WRN-28-10's achieved rate (the row's tflop_per_s: its GEMM and convolution
FLOPs per step over its time) at least 40 % of the fastest bf16 GEMM measured.
Stdlib only.
"""

import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import load_cyclone  # noqa: E402  (the Google Benchmark reader, same folder)

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
MACHINE = ("device", "driver", "cuda", "cudnn", "git_rev", "date")
RATIO = "ratio_vs_pytorch_eager_same_precision"
# Issue 8's targets: (workload, precisions (None: each one measured), minimum ratio).
TARGETS = [("lenet5-train-bs64", ("fp32",), 3.0),
           ("wrn-28-10-train-bs128", None, 1.0),
           ("resnet56-train-bs128", None, 1.0)]
# bf16 WRN-28-10's achieved FLOP/s against the measured bf16 GEMM peak.
PEAK_TARGET = ("wrn-28-10-train-bs128", "bf16", 0.40)


def load(path):
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"train_report.py: {path}: cannot read a JSON file ({e})")
    if not isinstance(data, dict) or not isinstance(data.get("runs", []), list):
        sys.exit(f"train_report.py: {path}: not a training benchmark JSON")
    data["runs"] = [r for r in data.get("runs", []) if isinstance(r, dict)]
    return data


def finite(v):
    """v as a float if it is a finite number (JSON null, NaN, inf, a string: None)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def ms(row):
    """The row's ms_per_step, "err" for an error row (or one without a usable time: missing,
    null, NaN, inf, not positive), None if no row."""
    if row is None:
        return None
    v = finite(row.get("ms_per_step"))
    if "error" in row or v is None or v <= 0:
        return "err"
    return v


class Results:
    def __init__(self, cyclone, torch):
        self.cyclone, self.torch = cyclone.get("runs", []), torch.get("runs", [])
        self.workloads = []
        for row in self.cyclone + self.torch:
            if row.get("workload") not in self.workloads:
                self.workloads.append(row.get("workload"))

    def cy(self, workload, precision):
        """The fastest Cyclone engine's row for the cell (graph, eager or channels last: the
        configuration a user would pick); the first row if none has a time."""
        rows = [r for r in self.cyclone
                if r.get("workload") == workload and r.get("precision") == precision
                and r.get("engine") != "cyclone-unfused"]
        timed = [r for r in rows if isinstance(ms(r), float)]
        return min(timed, key=ms) if timed else (rows[0] if rows else None)

    def pt(self, workload, engine, precision):
        return next((r for r in self.torch if r.get("workload") == workload
                     and r.get("engine") == engine and r.get("precision") == precision), None)

    def reference(self, workload, precision):
        engine = "pytorch-amp-channels-last" if precision in ("bf16", "fp16") else "pytorch-eager"
        return self.pt(workload, engine, precision)

    def ratio(self, cy_row, workload, precision):
        """PyTorch / Cyclone ms_per_step; None if either is missing, "err" if either failed."""
        a, b = ms(self.reference(workload, precision)), ms(cy_row)
        if a is None or b is None:
            return None
        return "err" if "err" in (a, b) else a / b


def cell(v, ratio=False):
    if v is None:
        return "—"
    if v == "err":
        return "err"
    if ratio:
        return f"{v:.2f}×"
    return f"{v:.3f}" if v < 10 else f"{v:.1f}" if v < 1000 else f"{v:.0f}"


def peak(row):
    if row is None:
        return "—"
    if ms(row) == "err":
        return "err"
    mb = finite(row.get("peak_mem_mb"))
    return "?" if mb is None else f"{mb:.0f}"


def markdown(res):
    head = ["workload", "Cyclone fp32 ms/step", "PyTorch eager fp32 ms/step", "ratio",
            "Cyclone tf32", "PyTorch tf32", "ratio", "Cyclone bf16", "PyTorch AMP+CL bf16",
            "ratio", "Cyclone fp16", "PyTorch AMP+CL fp16", "ratio", "torch.compile fp32",
            "peak MB Cyclone / PyTorch fp32"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for w in res.workloads:
        cells = [w]
        for p in PRECISIONS:
            c = res.cy(w, p)
            mark = " (CL)" if c and c.get("engine") == "cyclone-channels-last" else ""
            cells += [cell(ms(c)) + mark, cell(ms(res.reference(w, p))),
                      cell(res.ratio(c, w, p), ratio=True)]
        cells.append(cell(ms(res.pt(w, "pytorch-compile", "fp32"))))
        cells.append(f"{peak(res.cy(w, 'fp32'))} / {peak(res.pt(w, 'pytorch-eager', 'fp32'))}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fusion_lines(res):
    """For each cell with both a cyclone and a cyclone-unfused row: what the BN-ReLU fusion gave."""
    lines = []
    for row in res.cyclone:
        if row.get("engine") != "cyclone-unfused":
            continue
        w, p = row.get("workload"), row.get("precision")
        fused = next((r for r in res.cyclone if r.get("engine") == "cyclone" and
                      r.get("workload") == w and r.get("precision") == p), None)
        a, b = ms(row), ms(fused)
        if isinstance(a, float) and isinstance(b, float):
            lines.append(f"{w} {p}: BN-ReLU unfused {a:.3f} ms/step, fused {b:.3f} "
                         f"(fused {a / b:.2f}× the speed)")
    return lines


def gemm_peak(path):
    """The fastest BM_gemm/cuda/bf16/N rate (FLOP/s) in a cyclone_bench JSON, or None."""
    if not os.path.isfile(path):
        print(f"train_report.py: warning: no GEMM benchmark at {path}", file=sys.stderr)
        return None
    try:
        _, cases = load_cyclone(path)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        # A cut or failed cyclone_bench run: the bf16 target is then "not measured", the rest
        # of the report stands.
        print(f"train_report.py: warning: {path}: not a readable cyclone_bench JSON "
              f"({type(e).__name__}: {e})", file=sys.stderr)
        return None
    rates = [finite(e.get("FLOP/s")) for name, e in cases.items()
             if name.startswith("BM_gemm/cuda/bf16/")]
    rates = [r for r in rates if r is not None and r > 0]
    return max(rates) if rates else None


def peak_target(res, peak):
    """(line, met or None when not measured) for PEAK_TARGET."""
    workload, precision, minimum = PEAK_TARGET
    head = f"{workload} {precision}: ≥ {minimum:.0%} of the measured bf16 GEMM peak"
    row = res.cy(workload, precision)
    rate = finite(row.get("tflop_per_s")) if row and "error" not in row else None
    if peak is None or rate is None or rate <= 0:
        why = "no bf16 GEMM benchmark" if peak is None else "no Cyclone bf16 row"
        return f"{head}: not measured ({why})", None
    frac = rate * 1e12 / peak
    ok = frac >= minimum
    return (f"{head} ({peak / 1e12:.0f} TFLOP/s): {rate:.0f} TFLOP/s = {frac:.0%} — " +
            ("met" if ok else "NOT met")), ok


def check_targets(res, peak=None):
    lines, met, total = [], 0, 0
    for workload, precisions, minimum in TARGETS:
        if precisions is None:  # each precision either side measured
            precisions = [p for p in PRECISIONS if res.cy(workload, p) or
                          res.reference(workload, p)] or ["fp32"]
        for p in precisions:
            r = res.ratio(res.cy(workload, p), workload, p)
            total += 1
            if r is None:
                verdict = "not measured"
            elif r == "err":
                verdict = "error"
            else:
                met += r >= minimum
                verdict = f"{r:.2f}× — " + ("met" if r >= minimum else "NOT met")
            ref = "pytorch-amp-channels-last" if p in ("bf16", "fp16") else "pytorch-eager"
            lines.append(f"{workload} {p}: Cyclone ≥ {minimum:g}× {ref}: {verdict}")
    line, ok = peak_target(res, peak)
    lines.append(line)
    total += 1
    met += bool(ok)
    lines.append(f"{met} of {total} targets met")
    return "\n".join(lines)


def merged(cyclone, torch, res):
    # PyTorch's fields where the Cyclone file has none (its side did not run).
    out = {k: cyclone.get(k) or torch.get(k, "") for k in MACHINE}
    out["torch"] = torch.get("torch", "")
    runs = []
    for row in res.cyclone:
        row = dict(row)
        r = res.ratio(row, row.get("workload"), row.get("precision"))
        if isinstance(r, float):
            row[RATIO] = r
        runs.append(row)
    out["runs"] = runs + [dict(r) for r in res.torch]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cyclone_json")
    parser.add_argument("torch_json")
    parser.add_argument("--out", help="write the merged JSON here")
    parser.add_argument("--markdown", action="store_true", help="print the Markdown table")
    parser.add_argument("--check-targets", action="store_true", help="print the issue's targets")
    parser.add_argument("--gemm-bench", help="cyclone_bench JSON with BM_gemm/cuda/bf16/N (the peak)")
    args = parser.parse_args()
    cyclone, torch = load(args.cyclone_json), load(args.torch_json)
    for path, data in ((args.cyclone_json, cyclone), (args.torch_json, torch)):
        if data.get("complete") is False:  # --out's copy of a run that was stopped mid-way
            print(f"train_report.py: note: {path} is incomplete (the run stopped after "
                  f"{len(data.get('runs', []))} cases)", file=sys.stderr)
    if cyclone.get("device") and torch.get("device") and cyclone["device"] != torch["device"]:
        print(f"train_report.py: warning: measured on different devices ({cyclone.get('device')!r}"
              f" vs {torch.get('device')!r}); the ratios compare machines too", file=sys.stderr)
    res = Results(cyclone, torch)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(merged(cyclone, torch, res), f, indent=2)
            f.write("\n")
    if args.markdown or not (args.out or args.check_targets):
        print(markdown(res))
        fusion = fusion_lines(res)
        if fusion:
            print("\n" + "\n".join(fusion))
    if args.check_targets:
        if args.markdown:
            print()
        print(check_targets(res, gemm_peak(args.gemm_bench) if args.gemm_bench else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
