#!/usr/bin/env python3
"""PyTorch reference for cyclone_bench: the same cases, names, shapes and inputs policy.

Each case is timed the way cyclone_bench times it (benchmarks/bench_util.h): random inputs (never
zeros), a few warm-up calls, then one call per repetition timed with torch.cuda.Event pairs on the
current stream (a host clock on the CPU), rotating among copies of the working set so that a
rotation exceeds 128 MiB (over an H100's 50 MiB L2). The figure reported is the median.

Prints JSON: {"context": {...}, "benchmarks": [{"name": "BM_gemm/cuda/fp32/1024",
"median_s": ..., "mean_s": ..., "min_s": ..., "reps": ...}, ...]} for benchmarks/compare.py.

    python3 benchmarks/pytorch/kernels.py --device all > torch.json
"""

import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F

ROTATION_BYTES = 128 << 20
MAX_SETS = 32
WARMUP_CALLS = 3


def rotation_sets(set_bytes):
    if set_bytes <= 0:
        return 1
    return max(1, min(MAX_SETS, math.ceil(ROTATION_BYTES / set_bytes)))


def rotated(first):
    """first: a list of tensors; returns [first, copies...] as cyclone_bench's rotated_sets."""
    count = rotation_sets(sum(t.numel() * t.element_size() for t in first))
    return [first] + [[t.clone() for t in first] for _ in range(count - 1)]


def size_str(n):
    if n >= (1 << 20) and n % (1 << 20) == 0:
        return f"{n >> 20}M"
    if n > 4096 and n % (1 << 10) == 0:
        return f"{n >> 10}K"
    return str(n)


def shape_str(shape):
    return "x".join(str(d) for d in shape)


def uniform(shape, device, gen, lo=-1.0, hi=1.0, dtype=torch.float32):
    """Uniform float32 values, rounded to dtype (bf16 cases) as cyclone_bench's random_tensor_as."""
    return torch.empty(shape, device=device).uniform_(lo, hi, generator=gen).to(dtype)


def dtype_of(precision):
    return torch.bfloat16 if precision == "bf16" else torch.float32


def set_tf32(on):
    # torch >= 2.9 has fp32_precision; older versions only allow_tf32. Set both where they exist
    # so that "fp32" really is IEEE fp32 whatever the version's default.
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):
        try:
            matmul.fp32_precision = "tf32" if on else "ieee"
            return
        except (AttributeError, RuntimeError, ValueError):
            pass
    matmul.allow_tf32 = on


def set_conv_tf32(on):
    # cuDNN convolutions have their own switch (torch.backends.cudnn.allow_tf32, default True);
    # Cyclone's fp32 convolutions are IEEE fp32 (CUDNN_FMA_MATH) unless TF32 is allowed.
    cudnn = torch.backends.cudnn
    conv = getattr(cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        try:
            conv.fp32_precision = "tf32" if on else "ieee"
            return
        except (AttributeError, RuntimeError, ValueError):
            pass
    cudnn.allow_tf32 = on


def time_case(device, op, min_time, min_reps, max_reps):
    """Median seconds of one op(i) call, with warm-up; CUDA events on CUDA, a host clock on CPU."""
    call = 0
    for _ in range(WARMUP_CALLS):
        op(call)
        call += 1
    times = []
    if device == "cuda":
        torch.cuda.synchronize()
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        total = 0.0
        while len(times) < max_reps and (len(times) < min_reps or total < min_time):
            start.record()
            op(call)
            stop.record()
            stop.synchronize()
            t = start.elapsed_time(stop) * 1e-3
            times.append(t)
            total += t
            call += 1
    else:
        total = 0.0
        while len(times) < max_reps and (len(times) < min_reps or total < min_time):
            t0 = time.perf_counter()
            op(call)
            t = time.perf_counter() - t0
            times.append(t)
            total += t
            call += 1
    return times


def cases(device):
    """Yields (name, make) where make() builds the inputs and returns op(i)."""
    dev = device
    gen = torch.Generator(device=dev)
    gen.manual_seed(1)

    def gemm(n, precision):
        def make():
            set_tf32(precision == "tf32")
            dt = dtype_of(precision)
            sets = rotated([uniform((n, n), dev, gen, dtype=dt), uniform((n, n), dev, gen, dtype=dt),
                            torch.empty((n, n), device=dev, dtype=dt)])

            def op(i):
                a, b, c = sets[i % len(sets)]
                torch.mm(a, b, out=c)
            return op
        return make

    def add(n, precision):
        def make():
            dt = dtype_of(precision)
            sets = rotated([uniform((n,), dev, gen, dtype=dt), uniform((n,), dev, gen, dtype=dt),
                            torch.empty((n,), device=dev, dtype=dt)])

            def op(i):
                x, y, out = sets[i % len(sets)]
                torch.add(x, y, out=out)
            return op
        return make

    def relu(n, precision):
        def make():
            sets = rotated([uniform((n,), dev, gen, dtype=dtype_of(precision))])

            def op(i):
                torch.relu(sets[i % len(sets)][0])
            return op
        return make

    def sum_all(n):
        def make():
            sets = rotated([uniform((n,), dev, gen)])

            def op(i):
                torch.sum(sets[i % len(sets)][0])
            return op
        return make

    def sum_channels(shape):
        def make():
            sets = rotated([uniform(shape, dev, gen)])

            def op(i):
                sets[i % len(sets)][0].sum(dim=(0, 2, 3))
            return op
        return make

    def xent(rows, classes):
        def make():
            # Labels are int64 here (cross_entropy's type); int32 in Cyclone.
            labels = torch.randint(0, classes, (rows,), device=dev, generator=gen)
            sets = rotated([uniform((rows, classes), dev, gen, -4.0, 4.0), labels])
            for s in sets:
                s[0].requires_grad_(True)

            def op(i):
                x, y = sets[i % len(sets)]
                loss = F.cross_entropy(x, y)
                torch.autograd.grad(loss, x)
            return op
        return make

    def batchnorm(backward, precision, shape, channels_last=False):
        # Matches benchmarks/bench_batchnorm.cpp: training mode, x and dy in the precision's dtype,
        # weight, bias and running statistics float32 (PyTorch's mixed batch norm under AMP);
        # channels_last: x and dy in torch.channels_last (Cyclone's "_nhwc" cases).
        def make():
            dt, c = dtype_of(precision), shape[1]
            fmt = torch.channels_last if channels_last else torch.contiguous_format

            def act():
                return uniform(shape, dev, gen, dtype=dt).contiguous(memory_format=fmt)
            sets = rotated([act(), act(),
                            uniform((c,), dev, gen, 0.5, 1.5), uniform((c,), dev, gen),
                            uniform((c,), dev, gen), uniform((c,), dev, gen, 0.5, 2.0)])
            for s in sets:
                s[0].requires_grad_(True)

            def op(i):
                x, dy, w, b, rm, rv = sets[i % len(sets)]
                if backward:
                    y = F.batch_norm(x, rm, rv, w, b, True, 0.1, 1e-5)
                    torch.autograd.grad(y, x, dy)
                else:
                    with torch.no_grad():
                        F.batch_norm(x, rm, rv, w, b, True, 0.1, 1e-5)
            return op
        return make

    def conv(pass_, precision, batch, c_in, c_out, hw, k, stride, pad):
        # Matches benchmarks/bench_conv.cpp: x, w and dy random; cudnn.benchmark on, as Cyclone
        # times cuDNN's algorithms (cudnnFind*Ex) on a shape's first call.
        def make():
            torch.backends.cudnn.benchmark = True
            set_conv_tf32(precision == "tf32")
            dt = dtype_of(precision)
            xs, ws = (batch, c_in, hw, hw), (c_out, c_in, k, k)
            ho = (hw + 2 * pad - k) // stride + 1
            sets = rotated([uniform(xs, dev, gen, dtype=dt), uniform(ws, dev, gen, dtype=dt),
                            uniform((batch, c_out, ho, ho), dev, gen, dtype=dt)])
            mask = {"fwd": None, "bwd_data": [True, False, False],
                    "bwd_filter": [False, True, False]}[pass_]

            def op(i):
                x, w, dy = sets[i % len(sets)]
                if mask is None:
                    F.conv2d(x, w, None, stride, pad)
                else:
                    torch.ops.aten.convolution_backward(
                        dy, x, w, None, [stride, stride], [pad, pad], [1, 1], False, [0, 0], 1,
                        mask)
            return op
        return make

    def max_pool(backward, shape, k, stride, pad):
        # Matches benchmarks/bench_pool.cpp: the forward returns the indices too (Cyclone always
        # writes them); the backward is the kernel alone, from saved indices and a random dy.
        def make():
            sets = []
            for (x,) in rotated([uniform(shape, dev, gen)]):
                y, idx = F.max_pool2d(x, k, stride, pad, return_indices=True)
                sets.append((x, idx, uniform(tuple(y.shape), dev, gen)))

            def op(i):
                x, idx, dy = sets[i % len(sets)]
                if backward:
                    torch.ops.aten.max_pool2d_with_indices_backward(
                        dy, x, [k, k], [stride, stride], [pad, pad], [1, 1], False, idx)
                else:
                    F.max_pool2d(x, k, stride, pad, return_indices=True)
            return op
        return make

    out = []
    gemm_sizes = (256, 1024, 4096) if device == "cuda" else (256, 1024)
    for n in gemm_sizes:
        out.append((f"BM_gemm/{device}/fp32/{n}", gemm(n, "fp32")))
    if device == "cuda":
        for n in gemm_sizes:
            out.append((f"BM_gemm/{device}/tf32/{n}", gemm(n, "tf32")))
        for n in (1024, 4096, 8192):
            out.append((f"BM_gemm/{device}/bf16/{n}", gemm(n, "bf16")))
    for precision in ("fp32", "bf16"):
        for n in (1 << 20, 16 << 20):
            out.append((f"BM_add/{device}/{precision}/{size_str(n)}", add(n, precision)))
            out.append((f"BM_relu/{device}/{precision}/{size_str(n)}", relu(n, precision)))
    bn_shapes = ((128, 160, 32, 32), (128, 640, 8, 8)) if device == "cuda" else ((128, 16, 14, 14),)
    for precision in ("fp32", "bf16"):
        for backward in (False, True):
            for shape in bn_shapes:
                name = f"BM_batchnorm_{'bwd' if backward else 'fwd'}/{device}/{precision}/" \
                    f"{shape_str(shape)}"
                out.append((name, batchnorm(backward, precision, shape)))
            if device == "cuda":
                shape = (128, 160, 32, 32)
                name = f"BM_batchnorm_{'bwd' if backward else 'fwd'}/{device}/{precision}/" \
                    f"{shape_str(shape)}_nhwc"
                out.append((name, batchnorm(backward, precision, shape, channels_last=True)))
    for n in (1 << 20, 16 << 20):
        out.append((f"BM_sum_all/{device}/fp32/{size_str(n)}", sum_all(n)))
    shape = (128, 64, 32, 32)
    out.append((f"BM_sum_channels/{device}/fp32/{shape_str(shape)}", sum_channels(shape)))
    for rows, classes in ((128, 10), (128, 1000), (4096, 1000)):
        out.append((f"BM_softmax_xent_fwd_bwd/{device}/fp32/{rows}x{classes}",
                    xent(rows, classes)))
    for shape, (k, stride, pad) in (((128, 6, 28, 28), (2, 2, 0)), ((128, 16, 10, 10), (2, 2, 0)),
                                    ((128, 64, 32, 32), (3, 2, 1))):
        tag = f"k{k}s{stride}" + (f"p{pad}" if pad else "")
        for backward in (False, True):
            out.append((f"BM_max_pool_{'bwd' if backward else 'fwd'}/{device}/fp32/"
                        f"{shape_str(shape)}_{tag}", max_pool(backward, shape, k, stride, pad)))
    # Convolutions (bench_conv.cpp): WRN-28-10 layers at batch 128 on CUDA; LeNet-5's and
    # ResNet-56's on the CPU.
    wrn = ((3, 16, 32, 3, 1, 1), (16, 160, 32, 3, 1, 1), (160, 160, 32, 3, 1, 1),
           (16, 160, 32, 1, 1, 0), (160, 320, 32, 3, 2, 1), (320, 320, 16, 3, 1, 1),
           (160, 320, 32, 1, 2, 0), (320, 640, 16, 3, 2, 1), (640, 640, 8, 3, 1, 1),
           (320, 640, 16, 1, 2, 0))
    lenet = ((1, 6, 28, 5, 1, 2), (6, 16, 14, 5, 1, 0))
    resnet = ((16, 16, 32, 3, 1, 1), (32, 32, 16, 3, 1, 1), (64, 64, 8, 3, 1, 1),
              (16, 32, 32, 3, 2, 1))
    layers = [(l, p) for p in ("fp32", "tf32", "bf16") for l in wrn] if device == "cuda" else \
        [(l, "fp32") for l in lenet + resnet]
    for (c_in, c_out, hw, k, stride, pad), precision in layers:
        shape = (f"{shape_str((128, c_in, hw, hw))}_w{shape_str((c_out, c_in, k, k))}"
                 f"_s{stride}p{pad}")
        for pass_ in ("fwd", "bwd_data", "bwd_filter"):
            out.append((f"BM_conv_{pass_}/{device}/{precision}/{shape}",
                        conv(pass_, precision, 128, c_in, c_out, hw, k, stride, pad)))
    return out


def context():
    ctx = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpu_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        ctx["device_name"] = torch.cuda.get_device_name(0)
        ctx["cudnn"] = torch.backends.cudnn.version()
    return ctx


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("all", "cpu", "cuda"), default="all")
    parser.add_argument("--min-time", type=float, default=0.2,
                        help="seconds of timed work per case (default 0.2)")
    parser.add_argument("--min-reps", type=int, default=10)
    parser.add_argument("--max-reps", type=int, default=2000)
    parser.add_argument("--filter", default="", help="only cases whose name contains this")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        # Asked for by name: an empty result would read as a pass (--device all skips instead).
        parser.error("--device cuda: PyTorch sees no CUDA device (torch.cuda.is_available() is "
                     "False); use --device cpu or all")

    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    results = []
    for device in devices:
        if device == "cuda" and not torch.cuda.is_available():
            print("kernels.py: no CUDA device, skipping the cuda cases", file=sys.stderr)
            continue
        for name, make in cases(device):
            if args.filter and args.filter not in name:
                continue
            op = None
            try:
                op = make()
                times = time_case(device, op, args.min_time, args.min_reps, args.max_reps)
                results.append({"name": name, "median_s": statistics.median(times),
                                "mean_s": statistics.fmean(times), "min_s": min(times),
                                "reps": len(times)})
            except Exception as e:  # one failing case must not lose the others' numbers
                results.append({"name": name, "error": f"{type(e).__name__}: {e}"})
            print(f"kernels.py: {name} done", file=sys.stderr)
            del op  # free this case's tensors before the next case allocates its own
            if device == "cuda":
                torch.cuda.empty_cache()
    json.dump({"context": context(), "benchmarks": results}, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
