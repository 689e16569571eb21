#!/usr/bin/env python3
"""PyTorch reference for cyclone_bench's model cases (benchmarks/bench_models.cpp).

The same training step on the same architecture, batch and precision, under the same case names:
  BM_wrn28_10_train_step/cuda/fp32/128x3x32x32   WRN-28-10 (xternalz/WideResNet-pytorch layout,
                                                 the one models/wide_resnet.h follows), 10 classes
  BM_lenet5_train_step/cpu/fp32/128x1x28x28      LeNet-5 as models/lenet.h (max pooling, conv1
                                                 padded by 2), 10 classes
One step: zero the gradients (set to None), forward in training mode, cross-entropy, backward; no
optimizer. Weights as Cyclone initialises them: conv and linear weights he_normal (a normal of
std sqrt(2 / fan_in) / 0.8796 truncated to two standard deviations, Keras' he_normal), biases 0,
batch norm 1 / 0. IEEE fp32: TF32 off for matmuls and cuDNN convolutions; cudnn.benchmark on,
since Cyclone also picks its cuDNN algorithms by timing them (cudnnFind). Inputs uniform in
[-1, 1), labels uniform over the classes.

Timing as kernels.py: three warm-up steps, then CUDA events around each step (a host clock on the
CPU), the median reported. Prints the same JSON as kernels.py with, per case, images_per_s and
peak_mem_bytes (torch.cuda.max_memory_allocated over the timed steps).

    python3 benchmarks/pytorch/models.py --device all > torch_models.json
"""

import argparse
import json
import math
import statistics
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from kernels import context, set_conv_tf32, set_tf32, time_case  # same timing as the kernels

TRUNC_STD = 0.87962566103423978  # std of a unit normal truncated to [-2, 2]


def he_normal_(w):
    fan_in = w[0].numel()  # in * kh * kw (conv) or in (linear), PyTorch's fan_in
    std = math.sqrt(2.0 / fan_in) / TRUNC_STD
    nn.init.trunc_normal_(w, mean=0.0, std=std, a=-2 * std, b=2 * std)


def init_like_cyclone(model):
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            he_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class BasicBlock(nn.Module):
    """xternalz/WideResNet-pytorch's pre-activation block (layers/residual.h WideBasicBlock)."""

    def __init__(self, in_planes, out_planes, stride, drop_rate=0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, 1, 1, bias=False)
        self.drop_rate = drop_rate
        self.equal = in_planes == out_planes and stride == 1
        self.convShortcut = None if self.equal else nn.Conv2d(in_planes, out_planes, 1, stride,
                                                              0, bias=False)

    def forward(self, x):
        o = self.relu1(self.bn1(x))
        y = self.relu2(self.bn2(self.conv1(o)))
        if self.drop_rate > 0:
            y = F.dropout(y, p=self.drop_rate, training=self.training)
        y = self.conv2(y)
        return y + (x if self.equal else self.convShortcut(o))


class NetworkBlock(nn.Module):
    def __init__(self, n, in_planes, out_planes, stride, drop_rate=0.0):
        super().__init__()
        self.layer = nn.Sequential(*[
            BasicBlock(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1,
                       drop_rate) for i in range(n)])

    def forward(self, x):
        return self.layer(x)


class WideResNet(nn.Module):
    def __init__(self, depth, widen, num_classes, drop_rate=0.0):
        super().__init__()
        n = (depth - 4) // 6
        w = [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.block1 = NetworkBlock(n, w[0], w[1], 1, drop_rate)
        self.block2 = NetworkBlock(n, w[1], w[2], 2, drop_rate)
        self.block3 = NetworkBlock(n, w[2], w[3], 2, drop_rate)
        self.bn1 = nn.BatchNorm2d(w[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(w[3], num_classes)

    def forward(self, x):
        y = self.block3(self.block2(self.block1(self.conv1(x))))
        y = self.relu(self.bn1(y))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


class LeNet5(nn.Module):
    def __init__(self, in_channels, num_classes, pad):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=pad)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        y = F.max_pool2d(F.relu(self.conv1(x)), 2)
        y = torch.flatten(F.max_pool2d(F.relu(self.conv2(y)), 2), 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(y)))))


# (name, device, builder, batch, channels, hw, classes): bench_models.cpp's cases.
CASES = [
    ("BM_wrn28_10_train_step/cuda/fp32/128x3x32x32", "cuda",
     lambda: WideResNet(28, 10, 10), 128, 3, 32, 10),
    ("BM_lenet5_train_step/cpu/fp32/128x1x28x28", "cpu",
     lambda: LeNet5(1, 10, 2), 128, 1, 28, 10),
]


def step_case(device, build, batch, channels, hw, classes):
    gen = torch.Generator(device=device)
    gen.manual_seed(2)
    model = build()
    init_like_cyclone(model)
    model = model.to(device).train()
    x = torch.empty((batch, channels, hw, hw), device=device).uniform_(-1, 1, generator=gen)
    y = torch.randint(0, classes, (batch,), device=device, generator=gen)

    def op(i):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()

    return model, op


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("all", "cpu", "cuda"), default="all")
    parser.add_argument("--min-time", type=float, default=1.0)
    parser.add_argument("--min-reps", type=int, default=20)
    parser.add_argument("--max-reps", type=int, default=200)
    parser.add_argument("--filter", default="")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        # Asked for by name: an empty result would read as a pass (--device all skips instead).
        parser.error("--device cuda: PyTorch sees no CUDA device (torch.cuda.is_available() is "
                     "False); use --device cpu or all")

    set_tf32(False)
    set_conv_tf32(False)
    torch.backends.cudnn.benchmark = True
    results = []
    for name, device, build, batch, channels, hw, classes in CASES:
        if args.device != "all" and device != args.device:
            continue
        if args.filter and args.filter not in name:
            continue
        if device == "cuda" and not torch.cuda.is_available():
            print(f"models.py: no CUDA device, skipping {name}", file=sys.stderr)
            continue
        model = op = None
        try:
            model, op = step_case(device, build, batch, channels, hw, classes)
            for i in range(3):  # cudnn.benchmark's algorithm search stays out of the peak
                op(i)
            if device == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            times = time_case(device, op, args.min_time, args.min_reps, args.max_reps)
            median = statistics.median(times)
            entry = {"name": name, "median_s": median, "mean_s": statistics.fmean(times),
                     "min_s": min(times), "reps": len(times), "images_per_s": batch / median,
                     "params": sum(p.numel() for p in model.parameters())}
            if device == "cuda":
                entry["peak_mem_bytes"] = torch.cuda.max_memory_allocated()
            results.append(entry)
        except Exception as e:  # one failing case must not lose the others' numbers
            results.append({"name": name, "error": f"{type(e).__name__}: {e}"})
        print(f"models.py: {name} done", file=sys.stderr)
        del model, op
        if device == "cuda":
            torch.cuda.empty_cache()
    json.dump({"context": context(), "benchmarks": results}, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
