#!/usr/bin/env python3
"""scripts/gpu_run.sh GPU_PLAN=quick and GPU_PLAN=train, dry: a stand-in bundle (stub programs; cyclone_bench_train
is the real program on the CPU, LeNet-5 only) and a stand-in nvidia-smi, under the device tool's
layout (OUT set). What a GPU run's one chance depends on:
  - a step that fails (best_lr, PyTorch without a GPU) does not stop the steps after it;
  - a step that hangs (the fusion A/B here) is cut by the deadline, and what it finished before
    hanging is kept (its --out file) and reaches the report;
  - the whole run ends within GPU_DEADLINE_S (plus the summary), exit 1 naming the failed steps;
  - $OUT holds gpu_run.tar.gz (every file so far) and summary.txt with the training table.

usage: test_gpu_run_dry.py GPU_RUN_SH CYCLONE_BENCH_TRAIN
"""
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time

STUBS = {
    "bin/cyclone_info": 'echo "cuda devices: 1"\necho "libraries: stub"\n',
    "bin/best_lr": 'echo "best_lr: stub failure" >&2\nexit 1\n',
    # A valid Google Benchmark file with the bf16 GEMM the report's peak target reads.
    "bin/cyclone_bench": '''for a in "$@"; do case $a in --benchmark_out=*) f=${a#*=} ;; esac; done
cat >"$f" <<'J'
{"context": {}, "benchmarks": [{"name": "BM_gemm/cuda/bf16/8192/manual_time",
 "run_type": "iteration", "real_time": 1.0, "time_unit": "ms", "FLOP/s": 5.0e14}]}
J
''',
    # The real program on the CPU, small; the fusion A/B runs, then hangs.
    "bin/cyclone_bench_train": '''args=() hang=0
for a in "$@"; do
  case $a in
    --device=cuda) a=--device=cpu ;;
    --workloads=*) a=--workloads=lenet5-train-bs64 ;;
    --steps=*) a=--steps=3 ;;
    --reps=*) a=--reps=1 ;;
    --warmup=*) a=--warmup=2 ;;
    --engines=cyclone-unfused) hang=1 ;;
  esac
  args+=("$a")
done
LD_LIBRARY_PATH= "$REAL_BENCH_TRAIN" "${args[@]}" || exit
((hang)) && exec sleep 1000
exit 0
''',
    "tests/cyclone_tests_stub": 'echo "[  PASSED  ] 1 test."\n',
    "smi/nvidia-smi": '''case "$*" in
  *noheader*name*|*name*noheader*) echo "Stub GPU" ;;
  *noheader*) echo "1.0" ;;
  *) echo "name, driver_version, memory.total"; echo "Stub GPU, 1.0, 1 MiB" ;;
esac
''',
}


def main():
    gpu_run, real = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    with tempfile.TemporaryDirectory() as d:
        bundle, out = d + "/bundle", d + "/out"
        os.makedirs(bundle + "/lib")
        os.makedirs(out)
        for path, body in STUBS.items():
            p = os.path.join(bundle, path)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write("#!/bin/bash\n" + body)
            os.chmod(p, 0o755)
        # The GPU libraries gpu_run.sh looks for, found in a (stand-in) user site-packages.
        user = d + "/userbase"
        site = subprocess.run([sys.executable, "-c", "import site; print(site.getusersitepackages())"],
                              env=dict(os.environ, PYTHONUSERBASE=user), capture_output=True,
                              text=True, check=True).stdout.strip()
        os.makedirs(site)
        for lib in ("libcudnn.so.9", "libcublas.so.13", "libnccl.so.2"):
            open(os.path.join(site, lib), "w").close()
        env = dict(os.environ, OUT=out, GPU_PLAN="quick", CYCLONE_BUNDLE=bundle,
                   PYTHON=sys.executable, PYTHONUSERBASE=user, REAL_BENCH_TRAIN=real,
                   GPU_DEADLINE_S="45", GPU_TESTS_BUDGET_S="10",
                   PATH=bundle + "/smi:" + os.environ["PATH"])
        env.pop("CYCLONE_PEAK_GBPS", None)
        t0 = time.monotonic()
        r = subprocess.run(["bash", gpu_run], env=env, capture_output=True, text=True, timeout=300,
                           cwd=d)
        wall = time.monotonic() - t0
        assert r.returncode == 1, (r.returncode, r.stdout[-3000:], r.stderr[-3000:])
        assert wall < 45 + 30, wall  # the deadline, then the summary
        progress = r.stdout
        # Steps after failures still ran; the hanging one was cut.
        for line in ("== best_lr_gpu: FAILED", "== bench: ok", "== train_cyclone: ok",
                     "== train_unfused: FAILED (exit 124"):
            assert line in progress, (line, progress)
        assert sorted(os.listdir(out)) == ["gpu_run.tar.gz", "summary.txt"], os.listdir(out)
        summary = open(out + "/summary.txt").read()
        table = next(l for l in summary.splitlines() if l.startswith("| lenet5-train-bs64 |"))
        assert table.split(" | ")[1] not in ("—", "err"), table  # Cyclone's fp32 cell
        # The fusion A/B finished its case before hanging: its row was kept and merged.
        assert "lenet5-train-bs64 bf16: BN-ReLU unfused" in summary, summary
        assert "FAILED steps:" in summary and "best_lr_gpu" in summary and "train_unfused" in \
            summary, summary
        with tarfile.open(out + "/gpu_run.tar.gz") as tar:
            names = tar.getnames()
            cy = json.load(tar.extractfile("gpu_run/train_cyclone.json"))
        for f in ("info.txt", "tests.log", "bench.json", "train_cyclone.json", "summary.txt"):
            assert "gpu_run/" + f in names, (f, names)
        assert cy["complete"] is True and cy["device"] == "Stub GPU", cy
        assert any(row["engine"] == "cyclone-unfused" for row in cy["runs"]), cy["runs"]

        # GPU_PLAN=train, the lease's second call: the GEMM peak and the training table in every
        # precision, none of the quick plan's tests, best_lr, NCCL, fusion A/B, profiles or
        # memcheck.
        for f in os.listdir(out):
            os.remove(os.path.join(out, f))
        env["GPU_PLAN"] = "train"
        r = subprocess.run(["bash", gpu_run], env=env, capture_output=True, text=True, timeout=300,
                           cwd=d)
        progress = r.stdout
        for line in ("== info: ok", "== bench: ok", "== train_cyclone: ok"):
            assert line in progress, (line, progress)
        for name in ("cyclone_tests_stub", "best_lr_gpu", "nccl", "conv_algos", "train_unfused",
                     "profile_", "memcheck"):
            assert "== " + name not in progress, (name, progress)
        with tarfile.open(out + "/gpu_run.tar.gz") as tar:
            cy = json.load(tar.extractfile("gpu_run/train_cyclone.json"))
        precisions = {row["precision"] for row in cy["runs"]}
        assert precisions == {"fp32", "tf32", "bf16", "fp16"}, precisions
        assert {row["engine"] for row in cy["runs"]} == {"cyclone", "cyclone-channels-last"}, cy
    print("gpu_run.sh dry run: ok")


if __name__ == "__main__":
    main()
