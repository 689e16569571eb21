#!/usr/bin/env python3
"""Crash consistency: SIGKILL a training run at random moments, resume, and end where an
uninterrupted run ends, bit for bit (CPU).

    test_crash_consistency.py <train binary> <work dir or "">

A short run (an MLP with dropout on a tenth of Fashion-MNIST, a checkpoint every 3 steps) is
killed with SIGKILL at random moments at least MIN_KILLS times, a pause injected in the middle of
every checkpoint write (CYCLONE_TEST_CHECKPOINT_PAUSE_MS) so that many kills land inside one.
After each kill the run is started again with --resume: every resume must succeed from the last
complete checkpoint, and the finished run's weights must equal the uninterrupted run's exactly.
Prints the figures tests/RELIABILITY.md quotes.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

MIN_KILLS = 20
MIN_KILLS_IN_WRITES = 3
MAX_LAUNCHES = 120

train = sys.argv[1]
work = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else tempfile.mkdtemp(prefix="cyclone_crash_")
os.makedirs(work, exist_ok=True)
config = {
    "dataset": {"name": "fashion_mnist", "split_ratio": {"train": 0.1}, "random_seed": 3},
    "network": {"class": "mlp-64", "dropout": 0.1},
    "trainer": {"batch_size": 32, "max_epochs": 3, "limit_train_batches": 40,
                "checkpoint_every_steps": 3, "checkpoint_every": 1, "keep_checkpoints": 2,
                "log_every_steps": 10, "workers": 1, "tensorboard": False,
                "optimizer": {"name": "sgd", "momentum": 0.9, "weight_decay": 5e-4}},
    "policy": {"policy": "one_cycle", "max_lr": 0.05, "total_epochs": 3},
    "plots": False, "save_model": True, "device": "cpu",
}
cfg = os.path.join(work, "run.json")
with open(cfg, "w") as f:
    json.dump(config, f)


def run(log_dir, resume, env=None, timeout=300):
    args = [train, "--config", cfg, "--log_dir", log_dir]
    if resume:
        args += ["--resume", os.path.join(log_dir, "checkpoints")]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def model_bytes(log_dir):
    with open(os.path.join(log_dir, "model.safetensors"), "rb") as f:
        return f.read()


ref_dir = os.path.join(work, "reference")
t0 = time.time()
p = run(ref_dir, False)
_, err = p.communicate()
assert p.returncode == 0, ("the uninterrupted run failed", err.decode())
ref_seconds = time.time() - t0
reference = model_bytes(ref_dir)

env = dict(os.environ, CYCLONE_TEST_CHECKPOINT_PAUSE_MS="25")
rng = random.Random(int(os.environ.get("CRASH_SEED", "1234")))
crash_dir = os.path.join(work, "crash")
kills = kills_in_writes = completions = resumes = launches = 0
while True:
    launches += 1
    assert launches <= MAX_LAUNCHES, "too many launches"
    ckpt = os.path.join(crash_dir, "checkpoints")
    resume = os.path.exists(os.path.join(ckpt, "latest"))
    resumes += resume
    p = run(crash_dir, resume, env)
    done = kills >= MIN_KILLS and kills_in_writes >= MIN_KILLS_IN_WRITES
    if not done:
        delay = rng.uniform(0.05, 1.0 + 1.2 * ref_seconds)
        try:
            p.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            p.wait()
            kills += 1
            leftovers = [n for n in (os.listdir(ckpt) if os.path.isdir(ckpt) else [])
                         if n.startswith(".") and ".tmp" in n]
            kills_in_writes += bool(leftovers)
            continue
    _, err = p.communicate()
    assert p.returncode == 0, ("a resumed run failed (exit %d) after %d kills" % (p.returncode, kills),
                               err.decode()[-2000:])
    completions += 1
    assert model_bytes(crash_dir) == reference, \
        "the weights after %d kills differ from the uninterrupted run's" % kills
    if done:
        break
    shutil.rmtree(crash_dir)  # finished before enough kills: start over (the result was checked)

print("crash consistency: %d SIGKILLs (%d inside a checkpoint write), %d resumes, %d completed "
      "runs, all bit-identical to the uninterrupted run" % (kills, kills_in_writes, resumes,
                                                          completions))
if len(sys.argv) <= 2 or not sys.argv[2]:
    shutil.rmtree(work)
