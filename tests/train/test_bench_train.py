#!/usr/bin/env python3
"""cyclone_bench_train on the CPU: a tiny run prints the JSON that benchmarks/train_report.py and
the PyTorch script share (every row's fields, finite positive timings, the range test's name from
its step count), in fp32 and bf16 (mixed precision), and a bad flag, workload, engine or precision
is one line with exit status 2 before any case runs; --help prints the flags. --out FILE holds
the same JSON ("complete" true at the end), a bad --out is a usage error before any case, and the
report survives what a cut GPU run leaves: an empty side, null or NaN numbers, an incomplete file,
an unreadable GEMM benchmark.

usage: test_bench_train.py BENCH REPORT_PY
"""
import json
import math
import subprocess
import sys
import tempfile


def main():
    bench, report = sys.argv[1], sys.argv[2]
    tmp = tempfile.TemporaryDirectory()
    out_file = tmp.name + "/out.json"
    r = subprocess.run([bench, "--device=cpu", "--workloads=lenet5-train-bs64,lenet5-range-test",
                        "--steps=3", "--reps=2", "--warmup=2", "--range_steps=12",
                        "--range_reps=1", "--sync_every=4", "--precisions=fp32,bf16",
                        "--out=" + out_file],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # --out's file, rewritten after every case, ends as the object stdout got.
    assert json.load(open(out_file)) == out and out["complete"] is True, out_file
    for key in ("device", "driver", "cuda", "cudnn", "git_rev", "date", "runs"):
        assert key in out, key
    assert out["device"].startswith("cpu"), out["device"]
    names = sorted((row["workload"], row["engine"], row["precision"]) for row in out["runs"])
    assert names == sorted((w, e, p) for w in ("lenet5-range-test-12", "lenet5-train-bs64")
                           for e in ("cyclone", "cyclone-eager", "cyclone-channels-last")
                           for p in ("fp32", "bf16")), names
    for row in out["runs"]:
        assert "error" not in row, row
        for k in ("images_per_s", "ms_per_step", "peak_mem_mb"):
            assert math.isfinite(row[k]) and row[k] > 0, (k, row)
        assert len(row["ms_per_step_reps"]) == row["reps"]
        batch = 64 if "bs64" in row["workload"] else 128
        assert abs(row["images_per_s"] * row["ms_per_step"] / 1e3 - batch) < 1e-6 * batch, row
        assert "CUDA graphs need a GPU" in row["graph"] or "eager" in row["graph"], row["graph"]
        # One step's GEMM and convolution FLOPs, and that over the step time.
        assert row["gflop_per_step"] > 0, row
        assert abs(row["tflop_per_s"] * row["ms_per_step"] - row["gflop_per_step"]) < \
            1e-6 * row["gflop_per_step"], row
    by = {(r["workload"], r["engine"], r["precision"]): r for r in out["runs"]}
    for w in ("lenet5-train-bs64", "lenet5-range-test-12"):
        # bf16 does the same products as fp32; the range test's batch is twice as large.
        assert by[(w, "cyclone", "fp32")]["gflop_per_step"] == by[(w, "cyclone", "bf16")]["gflop_per_step"]
    ratio = by[("lenet5-range-test-12", "cyclone", "fp32")]["gflop_per_step"] / \
        by[("lenet5-train-bs64", "cyclone", "fp32")]["gflop_per_step"]
    assert abs(ratio - 2) < 1e-9, ratio

    # The report merges it with a PyTorch file of the same shape (here: the same rows renamed).
    torch = dict(out, runs=[dict(row, engine="pytorch-eager") for row in out["runs"]])
    with tempfile.TemporaryDirectory() as d:
        a, b, merged = d + "/c.json", d + "/t.json", d + "/m.json"
        json.dump(out, open(a, "w"))
        json.dump(torch, open(b, "w"))
        rep = subprocess.run([sys.executable, report, a, b, "--out", merged, "--markdown"],
                             capture_output=True, text=True, timeout=60)
        assert rep.returncode == 0, rep.stderr
        assert "lenet5-train-bs64" in rep.stdout, rep.stdout
        rows = json.load(open(merged))["runs"]
        ratios = [row["ratio_vs_pytorch_eager_same_precision"] for row in rows
                  if row["engine"].startswith("cyclone") and
                  "ratio_vs_pytorch_eager_same_precision" in row]
        assert ratios and all(math.isfinite(x) and x > 0 for x in ratios), rows

        # The bf16 target: WRN-28-10's achieved rate against the fastest bf16 GEMM benchmarked.
        wrn = dict(out, runs=[{"workload": "wrn-28-10-train-bs128", "engine": "cyclone",
                               "precision": "bf16", "ms_per_step": 100.0, "tflop_per_s": 300.0}])
        gemm = {"context": {}, "benchmarks": [
            {"name": "BM_gemm/cuda/bf16/4096/manual_time", "run_type": "iteration",
             "real_time": 1.0, "time_unit": "ms", "FLOP/s": 5.0e14},
            {"name": "BM_gemm/cuda/bf16/8192/manual_time", "run_type": "iteration",
             "real_time": 1.0, "time_unit": "ms", "FLOP/s": 6.0e14}]}
        w, g = d + "/w.json", d + "/g.json"
        json.dump(wrn, open(w, "w"))
        json.dump(gemm, open(g, "w"))
        rep = subprocess.run([sys.executable, report, w, b, "--check-targets", "--gemm-bench", g],
                             capture_output=True, text=True, timeout=60)
        assert rep.returncode == 0, rep.stderr
        assert "(600 TFLOP/s): 300 TFLOP/s = 50% — met" in rep.stdout, rep.stdout
        rep = subprocess.run([sys.executable, report, w, b, "--check-targets"],
                             capture_output=True, text=True, timeout=60)
        assert "not measured (no bf16 GEMM benchmark)" in rep.stdout, rep.stdout

        # The fusion A/B row: reported as a ratio, never the table's Cyclone cell (even faster).
        ab = dict(out, runs=[
            {"workload": "wrn-28-10-train-bs128", "engine": "cyclone", "precision": "bf16",
             "ms_per_step": 100.0},
            {"workload": "wrn-28-10-train-bs128", "engine": "cyclone-unfused", "precision": "bf16",
             "ms_per_step": 90.0}])
        json.dump(ab, open(w, "w"))
        rep = subprocess.run([sys.executable, report, w, b, "--markdown"],
                             capture_output=True, text=True, timeout=60)
        assert rep.returncode == 0, rep.stderr
        assert "wrn-28-10-train-bs128 bf16: BN-ReLU unfused 90.000 ms/step, fused 100.000 " \
            "(fused 0.90× the speed)" in rep.stdout, rep.stdout
        table_row = next(l for l in rep.stdout.splitlines() if l.startswith("| wrn-28-10"))
        assert "| 100.0 |" in table_row and "90.0" not in table_row, table_row

        # A file that is not JSON (a failed run's empty output): one line naming it.
        empty = d + "/empty.json"
        open(empty, "w").close()
        rep = subprocess.run([sys.executable, report, empty, b], capture_output=True, text=True,
                             timeout=60)
        assert rep.returncode != 0 and empty in rep.stderr, rep
        assert rep.stderr.count("\n") == 1, rep.stderr

        # What a GPU run cut short leaves (gpu_run.sh passes {"runs": []} for a side that wrote
        # nothing): an error row, a row with null / NaN numbers, an incomplete file, a cut GEMM
        # benchmark. The table and the targets still come out, the bad cells marked.
        cut = {"device": "gpu", "complete": False, "runs": [
            {"workload": "lenet5-train-bs64", "engine": "cyclone", "precision": "fp32",
             "ms_per_step": 2.0, "images_per_s": 32000.0, "peak_mem_mb": None},
            {"workload": "wrn-28-10-train-bs128", "engine": "cyclone", "precision": "fp32",
             "ms_per_step": float("nan"), "peak_mem_mb": 1.0},
            {"workload": "wrn-28-10-train-bs128", "engine": "cyclone", "precision": "bf16",
             "error": "CUDA error: out of memory"}]}
        c = d + "/cut.json"
        json.dump(cut, open(c, "w"))  # NaN written as NaN, as Python's json does
        none = d + "/none.json"
        json.dump({"runs": []}, open(none, "w"))
        cut_gemm = d + "/cut_gemm.json"
        open(cut_gemm, "w").write('{"context": {}, "benchmarks": [{"name": "BM_gemm/cu')
        rep = subprocess.run([sys.executable, report, c, none, "--markdown", "--check-targets",
                              "--gemm-bench", cut_gemm, "--out", merged],
                             capture_output=True, text=True, timeout=60)
        assert rep.returncode == 0, rep.stderr
        lenet = next(l for l in rep.stdout.splitlines() if l.startswith("| lenet5-train-bs64"))
        assert "| 2.000 | — | — |" in lenet and "? / —" in lenet, lenet
        wrn = next(l for l in rep.stdout.splitlines() if l.startswith("| wrn-28-10"))
        assert wrn.split(" | ")[1] == "err" and "nan" not in wrn.lower(), wrn
        assert "lenet5-train-bs64 fp32: Cyclone ≥ 3× pytorch-eager: not measured" in rep.stdout
        assert "not measured (no bf16 GEMM benchmark)" in rep.stdout, rep.stdout
        assert "incomplete" in rep.stderr and cut_gemm in rep.stderr, rep.stderr
        assert json.load(open(merged))["device"] == "gpu"
        # And the other way round: no Cyclone rows, the PyTorch file's machine fields kept.
        rep = subprocess.run([sys.executable, report, none, b, "--out", merged, "--markdown"],
                             capture_output=True, text=True, timeout=60)
        assert rep.returncode == 0 and "| lenet5-train-bs64 | — |" in rep.stdout, rep
        assert json.load(open(merged))["device"] == torch["device"], merged

    # Every flag is checked before the first case runs: exit 2, one line naming the flag and the
    # value, nothing on stdout (a typo in the last engine used to cost the earlier measurements).
    for args, needles in [
            (["--steps=zero"], ["--steps", "'zero'"]),
            (["--steps=5abc"], ["--steps", "'5abc'"]),
            (["--steps=1e3"], ["--steps", "'1e3'"]),
            (["--precisions=fp8"], ["--precisions", "'fp8'"]),
            (["--engines=cyclone,cyclone-eagr"], ["--engines", "'cyclone-eagr'", "cyclone-eager"]),
            (["--precisions=fp32,fp3"], ["--precisions", "'fp3'"]),
            (["--workloads=lenet5-bs64"], ["--workloads", "'lenet5-bs64'", "lenet5-train-bs64"]),
            (["--sync_every=99999999999"], ["--sync_every", "99999999999"]),
            (["--steps=1", "--reps=1", "--warmup=1"], ["--steps", "1cycle"]),
            (["--device=bogus"], ["--device", "'bogus'"])]:
        bad = subprocess.run([bench, "--workloads=lenet5-train-bs64", "--device=cpu", *args],
                             capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2, (args, bad.returncode, bad.stderr)
        assert bad.stderr.count("\n") == 1 and bad.stdout == "", (args, bad.stderr, bad.stdout)
        assert "rep 1" not in bad.stderr, (args, bad.stderr)
        for n in needles:
            assert n in bad.stderr, (args, n, bad.stderr)
    # --out that cannot be written fails before any case runs (nothing measured, then lost).
    bad = subprocess.run([bench, "--workloads=lenet5-train-bs64", "--device=cpu",
                          "--out=" + tmp.name + "/no/such/dir/x.json"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stdout == "" and "rep 1" not in bad.stderr, bad
    assert bad.stderr.count("\n") == 1 and "--out" in bad.stderr and "no/such/dir" in bad.stderr, \
        bad.stderr
    usage = subprocess.run([bench, "--help"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 0 and "--sync_every" in usage.stdout, usage
    print("cyclone_bench_train: ok")


if __name__ == "__main__":
    main()
