#!/usr/bin/env python3
"""Collects the accuracy experiments' raw logs into results.json, the README's table and the plots.

Reads benchmarks/accuracy/logs/<experiment>/<variant>/seed<k>/{summary.json, history.csv,
lr_finder.csv} as written by ./bin/train (run_e1.sh says how they were made) and writes
  benchmarks/accuracy/results.json          one row per experiment x variant
  benchmarks/accuracy/README.md             the table between its <!-- table --> markers
  benchmarks/accuracy/plots/*.svg           test accuracy / loss per epoch, range-test curves
Every number comes from those files; nothing is typed in by hand. Plain SVG, standard library only.
"""
import csv
import json
import math
import os
import platform
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
LOGS = os.path.join(HERE, "logs")

# What each experiment is, for results.json and the table. "published": the Fashion-MNIST README's
# benchmark table entry closest to the setting, or None.
EXPERIMENTS = {
    "E1": {
        "dataset": "fashion_mnist", "model": "lenet5", "epochs": 5, "batch_size": 128,
        "variants": ["constant", "step_decay", "triangular", "one_cycle"],
        "command": "./bin/train --config benchmarks/accuracy/E1/{variant}.json --seed {seed} "
                   "--log_dir benchmarks/accuracy/logs/E1/{variant}/seed{seed}",
        "published": ("2 Conv+pooling (Fashion-MNIST README benchmark table)", 0.916),
    },
    "E4": {
        "dataset": "fashion_mnist", "model": "lenet5", "epochs": 5, "batch_size": 128,
        "variants": ["wd_1e-3", "wd_3e-4", "wd_1e-4", "wd_3e-5", "momentum_constant"],
        "command": "./bin/train --config benchmarks/accuracy/E4/{variant}.json --seed {seed} "
                   "--log_dir benchmarks/accuracy/logs/E4/{variant}/seed{seed}",
        "published": ("2 Conv+pooling (Fashion-MNIST README benchmark table)", 0.916),
        # Smith's questions: which variants compete in each.
        "questions": {"weight_decay": ["wd_1e-3", "wd_3e-4", "wd_1e-4", "wd_3e-5"],
                      "momentum": ["wd_3e-4", "momentum_constant"]},
    },
}
# P1 is E1's one_cycle run in mixed precision (trainer.precision = bf16, fp16) and in channels-last
# layout (trainer.channels_last): the README puts them beside E1's float32 one_cycle row.
EXPERIMENTS["P1"] = {
    "dataset": "fashion_mnist", "model": "lenet5", "epochs": 5, "batch_size": 128,
    "variants": ["one_cycle_bf16", "one_cycle_fp16", "one_cycle_channels_last"],
    "command": "./bin/train --config benchmarks/accuracy/P1/{variant}.json --seed {seed} "
               "--log_dir benchmarks/accuracy/logs/P1/{variant}/seed{seed}",
    "published": ("2 Conv+pooling (Fashion-MNIST README benchmark table)", 0.916),
}
# E3 on a GPU (run_e3.sh with a bundle, through the device tool). "machine": what the lease said
# the GPU was, for summaries written before train recorded device_name (the 2026-11-27 seed 0).
EXPERIMENTS["E3"] = {
    "dataset": "fashion_mnist", "model": "wrn-28-10", "epochs": 30, "batch_size": 128,
    "variants": ["wrn28_10_one_cycle", "wrn28_10_one_cycle_min_loss"],
    "command": "./bin/train --config benchmarks/accuracy/E3/{variant}.json --seed {seed} "
               "--log_dir benchmarks/accuracy/logs/E3/{variant}/seed{seed} --device=cuda",
    "published": ("WRN-28-10, standard preprocessing and random crop/flip (Fashion-MNIST README "
                  "benchmark table)", 0.959),
    "machine": "NVIDIA H200",
}
# E2 on a GPU (run_e2.sh): the classic schedule's long budget against 1cycle at a quarter of it;
# "time_to": the test accuracies whose time to reach (wall seconds at the first epoch at or above,
# from history.csv) the README's E2 table gives. "epochs" is per variant there.
EXPERIMENTS["E2"] = {
    "dataset": "fashion_mnist", "model": "wrn-16-4", "epochs": None, "batch_size": 128,
    "variants": ["wrn16_4_multistep", "wrn16_4_one_cycle"],
    "command": "./bin/train --config benchmarks/accuracy/E2/{variant}.json --seed {seed} "
               "--log_dir benchmarks/accuracy/logs/E2/{variant}/seed{seed} --device=cuda",
    "published": None,
    "machine": "NVIDIA H200",
    "time_to": [0.93, 0.94, 0.95],
}
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def machine():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() + f", {os.cpu_count()} threads"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def svg_plot(path, title, xlabel, ylabel, series, xlog=False, ymax=None):
    """series: [(label, xs, ys, width)]; a line per series, legend top right; values above ymax
    are drawn at ymax (a diverged range test would squash the rest)."""
    if ymax is not None:
        series = [(l, xs, [min(y, ymax) for y in ys], wd) for l, xs, ys, wd in series]
    w, h, left, right, top, bottom = 720, 420, 70, 170, 40, 50
    xs_all = [x for _, xs, ys, _ in series for x, y in zip(xs, ys) if math.isfinite(y)]
    ys_all = [y for _, xs, ys, _ in series for y in ys if math.isfinite(y)]
    if not xs_all:
        return
    fx = (lambda v: math.log10(v)) if xlog else (lambda v: v)
    x0, x1 = min(map(fx, xs_all)), max(map(fx, xs_all))
    y0, y1 = min(ys_all), max(ys_all)
    if x1 == x0:
        x1 = x0 + 1
    pad = (y1 - y0) * 0.05 or 0.01
    y0, y1 = y0 - pad, y1 + pad
    px = lambda v: left + (fx(v) - x0) / (x1 - x0) * (w - left - right)
    py = lambda v: top + (y1 - v) / (y1 - y0) * (h - top - bottom)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>',
           f'<rect x="{left}" y="{top}" width="{w - left - right}" height="{h - top - bottom}" fill="none" stroke="#888"/>']
    for k in range(6):
        yv = y0 + (y1 - y0) * k / 5
        out.append(f'<text x="{left - 6}" y="{py(yv) + 4:.1f}" text-anchor="end">{yv:.3g}</text>')
    # x ticks: decades on a log axis, whole numbers (epochs) when there are few, else 6 even ones
    if xlog:
        ticks = [10.0 ** e for e in range(math.ceil(x0), math.floor(x1) + 1)]
    elif all(float(x).is_integer() for x in xs_all) and x1 - x0 <= 30:
        ticks = list(range(int(x0), int(x1) + 1))
    else:
        ticks = [x0 + (x1 - x0) * k / 5 for k in range(6)]
    for xv in ticks:
        label = f"{xv:.0e}" if xlog else f"{xv:.3g}"
        out.append(f'<text x="{px(xv):.1f}" y="{h - bottom + 16}" text-anchor="middle">{label}</text>')
    out.append(f'<text x="{(left + w - right) / 2}" y="{h - 12}" text-anchor="middle">{xlabel}</text>')
    out.append(f'<text x="16" y="{(top + h - bottom) / 2}" text-anchor="middle" transform="rotate(-90 16 {(top + h - bottom) / 2})">{ylabel}</text>')
    legend, color = [], COLORS[0]
    for label, xs, ys, width in series:
        if label:
            color = COLORS[len(legend) % len(COLORS)]
        pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys) if math.isfinite(y))
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="{width}" points="{pts}"/>')
        if label:
            legend.append((label, color))
    for i, (label, color) in enumerate(legend):
        y = top + 14 + 18 * i
        out.append(f'<line x1="{w - right + 10}" y1="{y - 4}" x2="{w - right + 30}" y2="{y - 4}" stroke="{color}" stroke-width="2"/>')
        out.append(f'<text x="{w - right + 36}" y="{y}">{label}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def e5(rows):
    """E5: the spread of 10 range tests per model, and 1cycle at the median and the extremes."""
    lines, plots = [], []
    for model, epochs, batch in (("lenet5", 5, 128), ("resnet8", 1, 64)):
        med = os.path.join(LOGS, "E5", f"{model}_median", "seed0")
        if not os.path.exists(os.path.join(med, "summary.json")):
            continue
        summ = json.load(open(os.path.join(med, "summary.json")))
        spread = summ["lr_finder"]["spread"]
        accs = {}
        for which in ("median", "min", "max"):
            d = os.path.join(LOGS, "E5", f"{model}_{which}", "seed0")
            path = os.path.join(d, "summary.json")
            if not os.path.exists(path):
                continue
            sm = json.load(open(path))
            rate = spread["min_loss_lr"][which]
            accs[which] = sm["final_test_accuracy"]
            cmd = (f"./bin/train --config benchmarks/accuracy/E5/{model}.json --seed {{seed}} "
                   f"--log_dir benchmarks/accuracy/logs/E5/{model}_median/seed{{seed}}"
                   if which == "median" else
                   f"./bin/train --config benchmarks/accuracy/logs/E5/{model}_{which}/seed0/config.json "
                   f"--seed {{seed}} --log_dir benchmarks/accuracy/logs/E5/{model}_{which}/seed{{seed}}")
            rows.append({"id": "E5", "dataset": "fashion_mnist", "model": model,
                         "policy": "one_cycle", "max_lr_from": f"min_loss {which} of 10 range tests",
                         "max_lr": rate, "epochs": epochs, "batch_size": batch,
                         "device": sm["device"], "machine": machine(), "seeds": [0],
                         "test_accuracy": [sm["final_test_accuracy"]],
                         "wall_seconds": [round(sm["wall_seconds"], 1)], "command": cmd})
        for sug in ("min_loss_lr", "min_loss_lr_div10", "steepest_lr", "valley_lr"):
            sp = spread[sug]
            extra = ""
            if sug == "min_loss_lr" and accs:
                extra = " / ".join(f"{accs.get(w, float('nan')):.4f}" for w in ("median", "min", "max"))
            lines.append(f"| {model} | {sug.replace('_lr', '')} | {sp['median']:.3g} | {sp['min']:.3g} - {sp['max']:.3g} | "
                         f"{sp['log10_std']:.2f} | {extra} |")
        curves = []
        for k in range(1, 11):
            name = "lr_finder.csv" if k == 1 else f"lr_finder_{k}.csv"
            f_path = os.path.join(med, name)
            if os.path.exists(f_path):
                r = read_csv(f_path)
                curves.append((f"{model} (10 tests)" if k == 1 else "", [float(x["lr"]) for x in r],
                               [float(x["smoothed_loss"]) for x in r], 1))
        if curves:
            svg_plot(os.path.join(HERE, "plots", f"E5_{model}_range_tests.svg"),
                     f"E5: 10 range tests of {model} (smoothed loss)", "learning rate",
                     "smoothed loss", curves, xlog=True, ymax=1.2 * max(c[2][0] for c in curves))
    return ("| model | suggestion | median | range (min - max) | spread (std of log10) | "
            "1cycle test accuracy at median / min / max |\n|---|---|---|---|---|---|\n" +
            "\n".join(lines) + "\n")


def reruns():
    """The reproducibility lines: every logs/E1-rerun/<policy>/seed<k> beside logs/E1/..."""
    base = os.path.join(LOGS, "E1-rerun")
    lines = []
    if not os.path.isdir(base):
        return ""
    for policy in sorted(os.listdir(base)):
        for sd in sorted(os.listdir(os.path.join(base, policy))):
            new = os.path.join(base, policy, sd, "summary.json")
            old = os.path.join(LOGS, "E1", policy, sd, "summary.json")
            if not (os.path.exists(new) and os.path.exists(old)):
                continue
            a = json.load(open(old))["final_test_accuracy"]
            b = json.load(open(new))["final_test_accuracy"]
            delta = 100 * abs(b - a)
            lines.append(f"| E1 | {policy} | {sd[4:]} | {a:.4f} | {b:.4f} | {delta:.2f} | "
                         f"{'yes' if delta < 0.5 else 'NO'} |")
    if not lines:
        return ""
    return ("| id | policy | seed | original | rerun | difference (points) | within half a point |\n"
            "|---|---|---|---|---|---|---|\n" + "\n".join(lines) + "\n")


def mean_std(v):
    return statistics.mean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)


def main():
    rows, table, per_variant, answers, time_rows = [], [], {}, [], []
    os.makedirs(os.path.join(HERE, "plots"), exist_ok=True)
    for eid, spec in EXPERIMENTS.items():
        curves_acc, curves_loss, finder_curves, curves_time = [], [], [], []
        for vi, variant in enumerate(spec["variants"]):
            vdir = os.path.join(LOGS, eid, variant)
            if not os.path.isdir(vdir):
                continue
            seeds = sorted(int(d[4:]) for d in os.listdir(vdir)
                           if d.startswith("seed") and os.path.exists(os.path.join(vdir, d, "summary.json")))
            if not seeds:
                continue
            acc, wall, lrs, devices, histories, gpus = [], [], [], set(), [], set()
            suggestion = None
            for s in seeds:
                d = os.path.join(vdir, f"seed{s}")
                with open(os.path.join(d, "summary.json")) as f:
                    summ = json.load(f)
                if summ.get("status") != "completed":
                    sys.exit(f"{d}: status {summ.get('status')}: rerun it")
                acc.append(summ["final_test_accuracy"])
                wall.append(round(summ["wall_seconds"], 1))
                # A schedule with no range test: its configured rate.
                lrs.append(summ.get("chosen_lr") or summ.get("policy", {}).get("lr"))
                suggestion = summ.get("suggestion", suggestion)
                devices.add(summ["device"])
                if summ["device"].startswith("cuda"):
                    gpus.add(summ.get("device_name") or spec["machine"])
                histories.append(read_csv(os.path.join(d, "history.csv")))
                lf = os.path.join(d, "lr_finder.csv")
                if os.path.exists(lf) and variant == spec["variants"][-1]:
                    f_rows = read_csv(lf)
                    finder_curves.append((f"seed {s}",
                                          [float(r["lr"]) for r in f_rows],
                                          [float(r["smoothed_loss"]) for r in f_rows], 1))
            epochs = [int(r["epoch"]) for r in histories[0]]
            mean_of = lambda key: [statistics.mean(float(h[i][key]) for h in histories) for i in range(len(epochs))]
            curves_acc.append((variant, epochs, mean_of("test_accuracy"), 2))
            curves_loss.append((variant, epochs, mean_of("test_loss"), 2))
            curves_time.append((variant, mean_of("wall_seconds"), mean_of("test_accuracy"), 2))
            per_variant[(eid, variant)] = {"epochs": epochs, "loss": mean_of("test_loss"),
                                           "acc": statistics.mean(acc), "seeds": len(seeds)}
            row = {"id": eid, "dataset": spec["dataset"], "model": spec["model"], "policy": variant,
                   "epochs": spec["epochs"] or len(epochs), "batch_size": spec["batch_size"],
                   "device": ",".join(sorted(devices)), "machine": ",".join(sorted(gpus)) if gpus else machine(), "seeds": seeds,
                   "test_accuracy": acc, "wall_seconds": wall,
                   "suggestion": suggestion, "chosen_lr": lrs,
                   "command": spec["command"].replace("{variant}", variant)}
            rows.append(row)
            m, sd = mean_std(acc)
            pub = spec.get("published")
            pub_text = f"{pub[1]:.3f} ({pub[0]})" if pub else "—"
            if spec.get("time_to"):
                reached = []
                for target in spec["time_to"]:
                    times = [next((float(r["wall_seconds"]) for r in h
                                   if float(r["test_accuracy"]) >= target), None) for h in histories]
                    row.setdefault("seconds_to_accuracy", {})[str(target)] = times
                    reached.append(f"{statistics.mean(times):.0f} s" if None not in times else
                                   f"not reached ({sum(t is None for t in times)} of {len(times)})")
                time_rows.append(f"| {eid} | {variant} | {len(epochs)} | {len(seeds)} | "
                                 f"{m:.4f} ± {sd:.4f} | " + " | ".join(reached) + " |")
            table.append(f"| {eid} | {spec['model']} | {variant} | {suggestion or 'fixed'} "
                         f"({statistics.median(lrs):.3g}) | {len(seeds)} | "
                         f"{m:.4f} ± {sd:.4f} | {pub_text} | {statistics.mean(wall):.0f} s |")
        if curves_acc:
            svg_plot(os.path.join(HERE, "plots", f"{eid}_test_accuracy.svg"),
                     f"{eid}: test accuracy per epoch (mean of seeds)", "epoch", "test accuracy",
                     curves_acc)
            svg_plot(os.path.join(HERE, "plots", f"{eid}_test_loss.svg"),
                     f"{eid}: test loss per epoch (mean of seeds)", "epoch", "test loss", curves_loss)
        if curves_acc and spec.get("time_to"):
            svg_plot(os.path.join(HERE, "plots", f"{eid}_accuracy_vs_time.svg"),
                     f"{eid}: test accuracy against wall time (mean of seeds)", "seconds",
                     "test accuracy", curves_time)
        for q, variants in spec.get("questions", {}).items():
            have = [v for v in variants if (eid, v) in per_variant]
            if len(have) < 2:
                continue
            svg_plot(os.path.join(HERE, "plots", f"{eid}_{q}_test_loss.svg"),
                     f"{eid}: {q} — test loss per epoch (mean of seeds)", "epoch", "test loss",
                     [(v, per_variant[(eid, v)]["epochs"], per_variant[(eid, v)]["loss"], 2)
                      for v in have])
            by_acc = max(have, key=lambda v: per_variant[(eid, v)]["acc"])
            picks = []
            for e in (1, 2):
                by_loss = min(have, key=lambda v: per_variant[(eid, v)]["loss"][e - 1])
                picks.append(f"epoch {e}: {by_loss}" + (" (same)" if by_loss == by_acc else " (differs)"))
            n = per_variant[(eid, have[0])]["seeds"]
            answers.append(f"| {eid} | {q} | {', '.join(have)} | {by_acc} "
                           f"({per_variant[(eid, by_acc)]['acc']:.4f}) | {'; '.join(picks)} | {n} |")
        if finder_curves:
            svg_plot(os.path.join(HERE, "plots", f"{eid}_range_tests.svg"),
                     f"{eid}: the range tests of {spec['variants'][-1]} (every config of a seed "
                     "runs the same one)", "learning rate",
                     "smoothed loss", finder_curves, xlog=True,
                     ymax=1.2 * max(c[2][0] for c in finder_curves))
    e5_body = e5(rows)
    with open(os.path.join(HERE, "results.json"), "w") as f:
        json.dump({"experiments": rows}, f, indent=2)
        f.write("\n")
    readme = os.path.join(HERE, "README.md")
    text = open(readme).read()
    start, end = "<!-- table:start -->", "<!-- table:end -->"
    head = ("| id | model | policy | rate from (median) | seeds | test accuracy (mean ± std) | "
            "published | wall (mean) |\n|---|---|---|---|---|---|---|---|\n")
    body = head + "\n".join(table) + "\n"
    a, b = text.index(start) + len(start), text.index(end)
    text = text[:a] + "\n" + body + text[b:]
    qstart, qend = "<!-- questions:start -->", "<!-- questions:end -->"
    qbody = ("| id | question | variants | best final accuracy (mean) | lowest test loss after | seeds |\n"
             "|---|---|---|---|---|---|\n" + "\n".join(answers) + "\n")
    if qstart in text:
        a, b = text.index(qstart) + len(qstart), text.index(qend)
        text = text[:a] + "\n" + qbody + text[b:]
    e5start, e5end = "<!-- e5:start -->", "<!-- e5:end -->"
    if e5start in text:
        a, b = text.index(e5start) + len(e5start), text.index(e5end)
        text = text[:a] + "\n" + e5_body + text[b:]
    tstart, tend = "<!-- e2:start -->", "<!-- e2:end -->"
    if tstart in text:
        targets = EXPERIMENTS["E2"]["time_to"]
        tbody = ("| id | policy | epochs | seeds | test accuracy (mean ± std) | " +
                 " | ".join(f"time to {t:.2f}" for t in targets) + " |\n|" +
                 "---|" * (5 + len(targets)) + "\n" + "\n".join(time_rows) + "\n")
        if not time_rows:
            tbody = "No runs yet.\n"
        a, b = text.index(tstart) + len(tstart), text.index(tend)
        text = text[:a] + "\n" + tbody + text[b:]
    rstart, rend = "<!-- rerun:start -->", "<!-- rerun:end -->"
    if rstart in text:
        a, b = text.index(rstart) + len(rstart), text.index(rend)
        text = text[:a] + "\n" + reruns() + text[b:]
    with open(readme, "w") as f:
        f.write(text)
    print(body)
    print(qbody)


if __name__ == "__main__":
    main()
