#!/usr/bin/env python3
"""A full disk: a run whose log directory runs out of space stops with one line naming the path,
exits 1, leaves its last complete checkpoint intact (a resume from it succeeds) and no truncated
file under a final name.

    test_full_disk.py <train binary>

Mounts a small tmpfs (needs root; otherwise prints why and skips with exit 0 — ctest reports the
skip through SKIP_RETURN_CODE 77).
"""
import json
import os
import subprocess
import sys
import tempfile

train = sys.argv[1]
work = tempfile.mkdtemp(prefix="cyclone_full_")
mnt = os.path.join(work, "small")
os.makedirs(mnt)
if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt],
                                       capture_output=True).returncode != 0:
    print("SKIP: mounting a small tmpfs needs root (and a kernel that allows it)")
    sys.exit(77)
def check_no_truncated_file(run_dir):
    from safetensors.numpy import load_file
    for root, _, files in os.walk(run_dir):
        for n in files:
            path = os.path.join(root, n)
            assert ".tmp" not in n, path
            if n.endswith(".json"):
                json.load(open(path))
            if n.endswith(".safetensors"):
                load_file(path)
            if n.endswith(".csv"):
                text = open(path).read()
                assert text and text.endswith("\n"), (path, text[-80:])


try:
    cfg = os.path.join(work, "run.json")
    with open(cfg, "w") as f:
        json.dump({"dataset": {"name": "fashion_mnist", "split_ratio": {"train": 0.1}},
                   "network": {"class": "mlp-64"},
                   "trainer": {"batch_size": 32, "max_epochs": 3, "limit_train_batches": 20,
                               "checkpoint_every_steps": 5, "keep_checkpoints": 1,
                               "optimizer": {"name": "sgd", "momentum": 0.9}},
                   "policy": {"policy": "constant", "lr": 0.05}, "device": "cpu"}, f)
    # 4k fills up in the first logs and plots; 600k in the second checkpoint.
    for size in ["4k", "600k"]:
        subprocess.run(["umount", mnt], capture_output=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", mnt], check=True)
        run_dir = os.path.join(mnt, "run")
        p = subprocess.run([train, "--config", cfg, "--log_dir", run_dir], capture_output=True,
                           text=True)
        err = p.stderr.strip().splitlines()
        assert p.returncode == 1, (size, p.returncode, p.stderr)
        assert len(err) == 1 and "No space left on device" in err[0] and mnt in err[0] \
            and "disk is full" in err[0], (size, err)
        check_no_truncated_file(run_dir)
        ckpt = os.path.join(run_dir, "checkpoints")
        if size == "600k":
            # The last good checkpoint is whole and resumes, writing elsewhere.
            latest = open(os.path.join(ckpt, "latest")).read().strip()
            p = subprocess.run([train, "--config", cfg, "--log_dir", os.path.join(work, "more"),
                                "--resume", ckpt], capture_output=True, text=True)
            assert p.returncode == 0, p.stderr
        print("full disk (%s): exit 1 with one line: %s" % (size, err[0]))
finally:
    subprocess.run(["umount", mnt])
    subprocess.run(["rm", "-rf", work])
