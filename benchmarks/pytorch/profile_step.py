#!/usr/bin/env python3
"""Kernel-time breakdown of PyTorch's training step, the twin of benchmarks/kernel_breakdown.py.

The step of benchmarks/pytorch/train.py (the same model, initialisation, SGD with momentum 0.9
and weight decay 5e-4, cudnn.benchmark on): fp32 eager, or bf16 / fp16 under torch.autocast with
the model and inputs in channels_last (train.py's pytorch-amp-channels-last). After --warmup steps,
torch.profiler records --steps steps; the kernels' device time per step is printed by category
(kernel_breakdown.category) and per kernel, longest first. A GPU only.

usage: profile_step.py [--workload wrn-28-10-train-bs128] [--precision bf16] [--steps 5]
                       [--warmup 15] [--top 40]
"""
import argparse
import collections
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import torch  # noqa: E402

import train  # noqa: E402  (benchmarks/pytorch/train.py: workloads, init_like_cyclone)
from kernel_breakdown import category  # noqa: E402


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workload", default="wrn-28-10-train-bs128")
    p.add_argument("--precision", default="bf16", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=15)
    p.add_argument("--top", type=int, default=40)
    a = p.parse_args(argv)
    known = train.workloads(4000)
    if a.workload not in known:
        raise SystemExit(f"profile_step.py: --workload={a.workload} is not one of "
                         f"{', '.join(sorted(known))}")
    if a.steps < 1 or a.warmup < 0:
        raise SystemExit("profile_step.py: --steps must be >= 1 and --warmup >= 0")
    if not torch.cuda.is_available():
        raise SystemExit("profile_step.py: no CUDA device (this profiles the GPU step)")
    build, batch, channels, hw = known[a.workload]
    amp = a.precision != "fp32"
    fmt = torch.channels_last if amp else torch.contiguous_format
    torch.backends.cudnn.benchmark = True
    train.set_tf32(False)
    train.set_conv_tf32(False)
    torch.manual_seed(0)
    model = build()
    train.init_like_cyclone(model)
    model = model.to("cuda", memory_format=fmt).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.empty((batch, channels, hw, hw), device="cuda").uniform_(-1, 1).contiguous(
        memory_format=fmt)
    y = torch.randint(0, train.CLASSES, (batch,), device="cuda")
    dtype = torch.float16 if a.precision == "fp16" else torch.bfloat16
    scaler = torch.amp.GradScaler("cuda") if a.precision == "fp16" else None

    def step():
        train.train_step(model, opt, x, y, "cuda", dtype, amp, scaler)

    for _ in range(a.warmup):
        step()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA],
                                acc_events=True) as prof:
        for _ in range(a.steps):
            step()
        torch.cuda.synchronize()
    per, count, cat = collections.Counter(), collections.Counter(), collections.Counter()
    for e in prof.key_averages():
        us = getattr(e, "device_time_total", None) or getattr(e, "cuda_time_total", 0)
        if us <= 0:
            continue
        per[e.key] += us / a.steps
        count[e.key] += e.count // a.steps
        cat[category(e.key)] += us / a.steps
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, {a.workload} "
          f"{a.precision}{' channels_last' if amp else ''}: device time per step over {a.steps} "
          f"steps")
    print(f"total {sum(per.values()):.1f} us")
    for c, us in cat.most_common():
        print(f"{c:10s} {us:10.1f} us")
    for name, us in per.most_common(a.top):
        print(f"{us:10.1f} us {count[name]:4d}x  {category(name):9s}  {name}")


if __name__ == "__main__":
    main(sys.argv[1:])
