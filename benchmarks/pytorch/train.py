#!/usr/bin/env python3
"""PyTorch reference for Cyclone's end-to-end training benchmark (bin/cyclone_bench_train).

Whole optimizer steps on synthetic data, timed over many steps, for the same workloads:
  lenet5-train-bs64        LeNet-5 as models/lenet.h (max pooling, conv1 padded by 2), 64x1x28x28
  lenet5-train-bs128       the same at batch 128
  resnet56-train-bs128     CIFAR ResNet-56 as models/resnet_cifar.h: conv3x3-BN-ReLU stem (16),
                           3 stages of 9 basic blocks (16, 32, 64 channels), option-A shortcut
                           (strided identity, zero-padded channels), global average pool, linear
  wrn-28-10-train-bs128    WRN-28-10 as models.py (models/wide_resnet.h), 128x3x32x32
  lenet5-range-test-4000   LeNet-5, batch 128: Smith's LR range test, lr_i = 1e-5 * 1e4^(i/3999)
                           for i < 4000, momentum 0.9; every step reads the loss back to the host
                           (loss.item()), keeps the bias-corrected smoothed loss (beta 0.98, as
                           fastai and torch-lr-finder) and its best, and evaluates the divergence
                           test (smoothed > 4 * best), but never stops early: all 4000 steps run
All 10 classes. One step: optimizer.zero_grad(set_to_none=True), forward in training mode,
F.cross_entropy, backward, torch.optim.SGD(momentum 0.9, weight_decay 5e-4) step. The training
workloads take lr and momentum from OneCycleLR (max_lr 0.1, momentum 0.95 -> 0.85, cosine, the
defaults otherwise), total_steps = warm-up + timed steps, scheduler.step() after every step; the
loss is not read back. Inputs: a pool of 8 batches made on the device up front (uniform [-1, 1)
images, uniform labels, a seeded torch.Generator), step i uses batch i % 8: no host-to-device copy
is timed. Weights as Cyclone initialises them (models.py's init_like_cyclone).

Engines (engine / precision):
  pytorch-eager / fp32               IEEE fp32: TF32 off for matmuls and cuDNN convolutions
  pytorch-eager / tf32               TF32 on for both
  pytorch-amp-channels-last / bf16   model and inputs channels_last, forward and loss under
                                     torch.autocast(bfloat16), fp32 master weights, no GradScaler
  pytorch-amp-channels-last / fp16   the same under torch.autocast(float16), with a GradScaler
                                     (dynamic loss scaling, its defaults)
  pytorch-compile / fp32             torch.compile(model) (default mode), IEEE fp32
  pytorch-compile / bf16             only with --compile-bf16: compile plus the AMP engine's setup
cudnn.benchmark is on throughout (Cyclone times its cuDNN algorithms too). On the CPU the bf16
and fp16 rows are not measured (an "error": "not measured on cpu" row).

Timing: W warm-up steps (default 20; they include torch.compile's compilation and cudnn.benchmark's
search), then R reps (default 5; 3 for the range test) of S steps (default 100; the range test's
whole ramp), each rep timed as a whole with torch.cuda.synchronize() and a host clock around it.
The range test restores the initial weights and clears the momentum before each rep (untimed), so
every rep runs the same ramp. ms_per_step = median over reps of rep time / S; images_per_s =
batch / ms_per_step; peak_mem_mb = torch.cuda.max_memory_allocated() over the timed reps (0 on CPU).
Prints one JSON object: the machine and versions, then "runs", one row per case ("error" rows for
the cases that failed), and "complete". --precisions keeps only the rows of those precisions (the
GPU run's quick plan measures the precisions Cyclone's side measures, no more). --out FILE also
writes the object to FILE before the first case and after every case (atomically, "complete"
false until the last), so a run killed by a time limit still leaves the cases it finished.

    python3 benchmarks/pytorch/train.py > torch_train.json
"""

import argparse
import datetime
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from kernels import set_conv_tf32, set_tf32
from models import LeNet5, WideResNet, init_like_cyclone

CLASSES = 10
POOL = 8  # synthetic batches, reused round-robin
RANGE = "lenet5-range-test"
ENGINES = ("pytorch-eager", "pytorch-amp-channels-last", "pytorch-compile")
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")


class CifarBlock(nn.Module):
    """layers/residual.h CifarBasicBlock: conv-BN-ReLU-conv-BN, + shortcut, ReLU.

    Cyclone computes the option-A shortcut as a strided 1x1 convolution with a constant 0/1 weight
    (output channel c + (out - in) / 2 copies input channel c); the slice-and-pad below is the same
    function, written the way PyTorch users write it (akamaster/pytorch_resnet_cifar10).
    """

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
        self.stride, self.pad = stride, (cout - cin) // 2
        self.project = cin != cout or stride != 1

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        s = x
        if self.project:
            s = F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(y + s)


class CifarResNet(nn.Module):
    def __init__(self, depth, num_classes):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16, eps=1e-5, momentum=0.1)
        stages, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            stages += [CifarBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1)
                       for i in range(n)]
            cin = cout
        self.layers = nn.Sequential(*stages)
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x):
        y = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.linear(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


def workloads(range_steps):
    """name -> (builder, batch, channels, height = width)."""
    lenet = lambda: LeNet5(1, CLASSES, 2)  # noqa: E731
    return {
        "lenet5-train-bs64": (lenet, 64, 1, 28),
        "lenet5-train-bs128": (lenet, 128, 1, 28),
        "resnet56-train-bs128": (lambda: CifarResNet(56, CLASSES), 128, 3, 32),
        "wrn-28-10-train-bs128": (lambda: WideResNet(28, 10, CLASSES), 128, 3, 32),
        f"{RANGE}-{range_steps}": (lenet, 128, 1, 28),
    }


def train_step(net, opt, x, y, dev, amp_dtype, amp, scaler):
    """One optimizer step, as every case and profile_step.py take it: zero_grad(set_to_none),
    the forward and the loss under torch.autocast when amp, backward, SGD; with a GradScaler
    (float16) the loss scaled and the step through it. Returns the loss (not read back)."""
    opt.zero_grad(set_to_none=True)
    with torch.autocast(dev, dtype=amp_dtype, enabled=amp):
        loss = F.cross_entropy(net(x), y)
    if scaler is None:
        loss.backward()
        opt.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    return loss


def run_case(args, workload, engine, precision):
    build, batch, channels, hw = workloads(args.range_steps)[workload]
    dev, amp, cuda = args.device, precision in ("bf16", "fp16"), args.device == "cuda"
    amp_dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    # float16 scales the loss (GradScaler's defaults; torch.amp's since torch 2.3, else
    # torch.cuda.amp's); the other precisions step plainly.
    scaler = None
    if precision == "fp16":
        scaler = (torch.amp.GradScaler(dev) if hasattr(torch.amp, "GradScaler")
                  else torch.cuda.amp.GradScaler())
    range_test = workload.startswith(RANGE)
    set_tf32(precision == "tf32")
    set_conv_tf32(precision == "tf32")
    fmt = torch.channels_last if amp else torch.contiguous_format

    torch.manual_seed(0)  # init_like_cyclone draws from the global generator
    model = build()
    init_like_cyclone(model)
    model = model.to(dev, memory_format=fmt).train()
    gen = torch.Generator(device=dev)
    gen.manual_seed(1)
    xs = [torch.empty((batch, channels, hw, hw), device=dev).uniform_(-1, 1, generator=gen)
          .contiguous(memory_format=fmt) for _ in range(POOL)]
    ys = [torch.randint(0, CLASSES, (batch,), device=dev, generator=gen) for _ in range(POOL)]
    net = model
    if engine == "pytorch-compile":
        # Each case's model is new; without a reset dynamo would soon hit its recompile limit and
        # silently run eager.
        torch._dynamo.reset()
        net = torch.compile(model, **({"mode": args.compile_mode} if args.compile_mode else {}))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)

    def step(i):
        return train_step(net, opt, xs[i % POOL], ys[i % POOL], dev, amp_dtype, amp, scaler)

    reps = args.reps or (3 if range_test else 5)
    if range_test:
        steps = args.range_steps
        lrs = [1e-5 * 1e4 ** (i / (steps - 1)) for i in range(steps)]
        initial = {k: v.detach().clone() for k, v in model.state_dict().items()}

        def reset():  # every rep runs the same ramp from the same weights
            model.load_state_dict(initial)  # in place, so a compiled graph stays valid
            opt.state.clear()  # SGD makes fresh momentum buffers on the next step

        def run(n):
            avg, best, diverged_at = 0.0, math.inf, None
            for i in range(n):
                opt.param_groups[0]["lr"] = lrs[i]
                avg = 0.98 * avg + 0.02 * step(i).item()  # the host sync a range test pays
                smoothed = avg / (1 - 0.98 ** (i + 1))
                best = min(best, smoothed)
                if diverged_at is None and smoothed > 4 * best:
                    diverged_at = i  # a user's range test would stop here; equal work runs on
            return diverged_at
    else:
        steps = args.steps
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=0.1, total_steps=args.warmup + reps * steps,
            cycle_momentum=True, base_momentum=0.85, max_momentum=0.95)
        count = 0  # batches rotate across the warm-up and the reps
        reset = lambda: None  # noqa: E731  (the 1cycle run goes on across the reps)

        def run(n):
            nonlocal count
            for _ in range(n):
                step(count)
                sched.step()
                count += 1

    sync = torch.cuda.synchronize if cuda else (lambda: None)
    reset()
    run(min(args.warmup, steps) if range_test else args.warmup)
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times, diverged_at = [], None
    for _ in range(reps):
        reset()
        sync()
        t0 = time.perf_counter()
        diverged_at = run(steps)
        sync()
        times.append((time.perf_counter() - t0) * 1e3 / steps)
    ms = statistics.median(times)
    if range_test:
        seen = "never diverged" if diverged_at is None else f"diverged at step {diverged_at}"
        print(f"train.py: {workload} {engine} {precision}: {seen} (ran on)", file=sys.stderr)
    return {"images_per_s": batch * 1e3 / ms, "ms_per_step": ms,
            "peak_mem_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else 0.0,
            "steps": steps, "reps": reps, "ms_per_step_reps": times}


def measure(args, workload, engine, precision):
    """One row of "runs": run_case's numbers, or why there are none."""
    row = {"workload": workload, "engine": engine, "precision": precision}
    print(f"train.py: {workload} {engine} {precision} ...", file=sys.stderr)
    if precision in ("bf16", "fp16") and args.device == "cpu":
        row["error"] = msg = "not measured on cpu"
    else:
        try:
            row.update(run_case(args, workload, engine, precision))
            msg = f"{row['ms_per_step']:.3f} ms/step, {row['images_per_s']:.0f} img/s"
        except Exception as e:  # one failing case must not lose the others' numbers
            # Compile errors can run to pages; the first 1000 characters say what failed.
            row["error"] = f"{type(e).__name__}: {e}".strip()[:1000]
            msg = row["error"].splitlines()[0]
    print(f"train.py: {workload} {engine} {precision}: {msg}", file=sys.stderr)
    # Free the case's model, optimizer and compiled graphs before the next one.
    if engine == "pytorch-compile":
        torch._dynamo.reset()
    gc.collect()
    if args.device == "cuda":
        torch.cuda.empty_cache()
    return row


def command(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def header(device):
    if device == "cuda":
        name = torch.cuda.get_device_name(0)
        driver = (command(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
                  .splitlines() or [""])[0]
    else:
        model = ""
        try:
            with open("/proc/cpuinfo") as f:
                model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")),
                             "")
        except OSError:
            pass
        name, driver = f"cpu: {model}", ""
    # The versions of what ran: none on the CPU (as cyclone_bench_train), whatever torch ships.
    cuda = device == "cuda"
    cudnn = torch.backends.cudnn.version() if cuda and torch.backends.cudnn.is_available() else None
    here = os.path.dirname(os.path.abspath(__file__))
    return {"device": name, "driver": driver, "cuda": (torch.version.cuda or "") if cuda else "",
            "cudnn": str(cudnn) if cudnn else "", "torch": torch.__version__,
            "git_rev": command(["git", "-C", here, "rev-parse", "--short", "HEAD"]),
            "date": datetime.date.today().isoformat()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"),
                        default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workloads", default="", help="comma list (default: all 5)")
    parser.add_argument("--engines", default="", help="comma list of " + ", ".join(ENGINES))
    parser.add_argument("--steps", type=int, default=100, help="timed steps per rep (100)")
    parser.add_argument("--reps", type=int, default=0, help="timed reps (5; range test 3)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first (20)")
    parser.add_argument("--range-steps", type=int, default=4000, help="range test length (4000)")
    parser.add_argument("--compile-mode", default="", help="torch.compile mode (its default)")
    parser.add_argument("--compile-bf16", action="store_true",
                        help="also a pytorch-compile bf16 row (AMP + channels_last)")
    parser.add_argument("--precisions", default="",
                        help="comma list of " + ", ".join(PRECISIONS) + " (default: all)")
    parser.add_argument("--out", default="",
                        help="also write the JSON here, rewritten after every case")
    args = parser.parse_args()
    if args.steps < 1 or args.reps < 0 or args.warmup < 0 or args.range_steps < 2:
        parser.error("--steps >= 1, --reps >= 0, --warmup >= 0, --range-steps >= 2")
    names = list(workloads(args.range_steps))
    chosen = names
    if args.workloads:
        # Any lenet5-range-test* names the range test, whatever --range-steps makes its name.
        chosen = [names[-1] if w.startswith(RANGE) else w for w in args.workloads.split(",")]
    engines = args.engines.split(",") if args.engines else list(ENGINES)
    precisions = args.precisions.split(",") if args.precisions else list(PRECISIONS)
    bad = ([w for w in chosen if w not in names] + [e for e in engines if e not in ENGINES] +
           [p for p in precisions if p not in PRECISIONS])
    if bad:
        parser.error(f"unknown workload, engine or precision: {', '.join(bad)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device; use --device cpu")

    torch.backends.cudnn.benchmark = True
    cases = {"pytorch-eager": ["fp32", "tf32"], "pytorch-amp-channels-last": ["bf16", "fp16"],
             "pytorch-compile": ["fp32"] + (["bf16"] if args.compile_bf16 else [])}
    out = header(args.device)
    out["runs"], out["complete"] = [], False
    write_out(args, out, parser)
    for workload in chosen:
        for engine in engines:
            for precision in cases[engine]:
                if precision in precisions:
                    out["runs"].append(measure(args, workload, engine, precision))
                    write_out(args, out)
    out["complete"] = True
    write_out(args, out)
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


def write_out(args, out, parser=None):
    """--out's copy so far, replaced whole. The first write (parser given) failing is a usage
    error, before any case runs; a later one only warns: stdout still gets every row at the end."""
    if not args.out:
        return
    tmp = f"{args.out}.part"
    try:
        with open(tmp, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")
        os.replace(tmp, args.out)
    except OSError as e:
        if parser:
            parser.error(f"--out {args.out}: cannot write ({e.strerror or e})")
        print(f"train.py: warning: --out {args.out}: cannot write ({e.strerror or e}); the JSON "
              "still goes to stdout", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
