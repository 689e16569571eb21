#!/usr/bin/env bash
# ./bin/lr_schedule end to end: CSV header, rows and precision; --spec @file; --flag=value and
# --flag value; JSON output; --plot; bad specs and flags exit 2 with one line.
# Usage: test_lr_schedule_cli.sh /path/to/lr_schedule
set -euo pipefail
bin=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lr_schedule_test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# CSV: header, N rows, step column 0..N-1, numbers exact to the last digit.
out=$("$bin" --spec '{"policy": "step", "lr": 0.1, "step_size": 2, "gamma": 0.3}' --steps 5)
[[ $(head -1 <<<"$out") == "step,lr,momentum" ]] || fail "header: $(head -1 <<<"$out")"
[[ $(wc -l <<<"$out") -eq 6 ]] || fail "expected 6 lines, got $(wc -l <<<"$out")"
[[ $(cut -d, -f1 <<<"$out" | tail -n +2 | tr '\n' ' ') == "0 1 2 3 4 " ]] || fail "steps"
row=$(sed -n 4p <<<"$out")  # t = 2: 0.1 * 0.3 in double arithmetic, momentum default 0.9
[[ $row == "2,0.03,0.9" ]] || fail "row t=2: $row"

# At least 12 significant digits where the value needs them: cosine at t=1 of 7.
out=$("$bin" --spec='{"policy": "cosine", "lr": 1, "total_steps": 7}' --steps=2)
lr1=$(sed -n 3p <<<"$out" | cut -d, -f2)
digits=$(tr -d '.-' <<<"${lr1%%e*}" | sed 's/^0*//')
(( ${#digits} >= 12 )) || fail "lr at t=1 printed with too few digits: $lr1"
python3 - "$lr1" <<'PY' || fail "lr at t=1 is $lr1"
import math, sys
want = 0 + (1 - 0) * (1 + math.cos(math.pi * 1 / 7)) / 2
assert float(sys.argv[1]) == want, (sys.argv[1], repr(want))
PY

# Scheduled momentum, and the spec's momentum for a policy that does not schedule it.
# max_lr/25 annealed by cos(0): 0.040000000000000036, as PyTorch gives, printed exactly.
out=$("$bin" --spec '{"policy": "one_cycle", "max_lr": 1, "total_steps": 10}' --steps 1)
[[ $(sed -n 2p <<<"$out") == "0,0.040000000000000036,0.95" ]] || fail "one_cycle t=0: $(sed -n 2p <<<"$out")"
out=$("$bin" --spec '{"policy": "constant", "lr": 0.5, "momentum": 0.7}' --steps 1)
[[ $(sed -n 2p <<<"$out") == "0,0.5,0.7" ]] || fail "spec momentum: $(sed -n 2p <<<"$out")"

# @file, JSON format with restarts, and a plot.
echo '{"policy": "sgdr", "lr": 0.1, "cycle_len": 3, "cycle_mult": 2}' >"$tmp/spec.json"
"$bin" --spec "@$tmp/spec.json" --steps 20 --format json --plot "$tmp/plot.svg" >"$tmp/out.json"
python3 - "$tmp/out.json" <<'PY' || fail "json output"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["policy"]["policy"] == "sgdr" and d["policy"]["min_lr"] == 0.0, d["policy"]
assert len(d["lr"]) == 20 and d["lr"][0] == 0.1 and d["lr"][3] == 0.1, d["lr"]
assert d["restarts"] == [3, 9], d["restarts"]
assert d["momentum_scheduled"] is False and d["momentum"][0] == 0.9
PY
grep -q '<svg' "$tmp/plot.svg" && grep -q '</svg>' "$tmp/plot.svg" || fail "plot is not an SVG"
grep -q '<polyline' "$tmp/plot.svg" || fail "plot has no line"
[[ ! -e $tmp/plot.svg.tmp ]] || fail "temporary plot file left behind"

# Usage errors: exit 2, exactly one line on stderr, naming the problem.
expect_usage_error() {
  local needle=$1; shift
  set +e
  "$bin" "$@" >"$tmp/stdout" 2>"$tmp/stderr"
  local rc=$?
  set -e
  [[ $rc -eq 2 ]] || fail "exit $rc (want 2) for: $*"
  [[ $(wc -l <"$tmp/stderr") -eq 1 ]] || fail "stderr is not one line for: $* -> $(cat "$tmp/stderr")"
  grep -qF -- "$needle" "$tmp/stderr" || fail "stderr '$(cat "$tmp/stderr")' lacks '$needle'"
  [[ ! -s $tmp/stdout ]] || fail "stdout not empty for: $*"
}
expect_usage_error "unknown policy 'nope'" --spec '{"policy": "nope"}' --steps 3
expect_usage_error "field 'pct_start'" \
  --spec '{"policy": "one_cycle", "max_lr": 1, "total_steps": 10, "pct_start": 2}' --steps 3
expect_usage_error "field 'max_lr'" \
  --spec '{"policy": "triangular", "base_lr": 1, "max_lr": 0.1, "step_size": 2}' --steps 3
expect_usage_error "not valid JSON" --spec '{"policy": ' --steps 3
expect_usage_error "cannot read" --spec "@$tmp/missing.json" --steps 3
expect_usage_error "--steps" --spec '{"policy": "constant", "lr": 1}' --steps 0
expect_usage_error "--steps" --spec '{"policy": "constant", "lr": 1}' --steps abc
expect_usage_error "--steps is required" --spec '{"policy": "constant", "lr": 1}'
expect_usage_error "--format" --spec '{"policy": "constant", "lr": 1}' --steps 2 --format xml
expect_usage_error "unknown flag --stpes" --spec '{"policy": "constant", "lr": 1}' --stpes 2
expect_usage_error "unknown field 'cycle_mul': did you mean 'cycle_mult'? (known: cycle_len, cycle_mult, lr, min_lr, momentum, policy)" \
  --spec '{"policy": "sgdr", "lr": 0.1, "cycle_len": 10, "cycle_mul": 2}' --steps 3
# An unwritable plot is refused before the schedule is printed (stdout stays empty).
expect_usage_error "--plot $tmp/nowhere/x.svg: no such directory" \
  --spec '{"policy": "constant", "lr": 1}' --steps 3 --plot "$tmp/nowhere/x.svg"
expect_usage_error "is a directory" --spec '{"policy": "constant", "lr": 1}' --steps 3 --plot "$tmp"
# The plot is SVG: x.png held SVG bytes no image viewer opens.
expect_usage_error "--plot $tmp/x.png: the plot is an SVG drawing; name the file *.svg" \
  --spec '{"policy": "constant", "lr": 1}' --steps 3 --plot "$tmp/x.png"
[[ ! -e $tmp/x.png ]] || fail "--plot x.png was written"
# A pipe (or a link to one) is refused, never replaced by a file; a link to a file is written
# through, the link kept.
mkfifo "$tmp/pipe.svg"
ln -s pipe.svg "$tmp/to_pipe.svg"
expect_usage_error "--plot $tmp/pipe.svg: is not a regular file" \
  --spec '{"policy": "constant", "lr": 1}' --steps 3 --plot "$tmp/pipe.svg"
expect_usage_error "--plot $tmp/to_pipe.svg: is not a regular file" \
  --spec '{"policy": "constant", "lr": 1}' --steps 3 --plot "$tmp/to_pipe.svg"
[[ -p $tmp/pipe.svg && -L $tmp/to_pipe.svg ]] || fail "the pipe or the link to it was replaced"
echo original >"$tmp/target.svg"
ln -s target.svg "$tmp/link.svg"
"$bin" --spec '{"policy": "constant", "lr": 1}' --steps 3 --plot "$tmp/link.svg" >/dev/null
[[ -L $tmp/link.svg ]] || fail "--plot replaced the symlink by a file"
grep -q '</svg>' "$tmp/target.svg" || fail "--plot through a symlink did not write its target"
# Output is streamed: a million steps (CSV and JSON, with a plot) take at most a few tens of MB
# more than ten steps do (buffered, they took over 100 MB more; 10^8 steps took 10 GB), and the
# plot keeps a bounded number of points, the last step's among them. (Against ten steps, not an
# absolute bound: a build with CUDA maps its libraries, about 200 MB, before the first step. Under
# ASan, freed memory is held in a 256 MB quarantine, turned off here so the peak is the program's.)
python3 - "$bin" "$tmp" <<'PY' || fail "a long schedule is not streamed"
import json, os, re, subprocess, sys
bin, tmp = sys.argv[1], sys.argv[2]
spec = '{"policy": "sgdr", "lr": 0.1, "cycle_len": 1000}'
env = dict(os.environ)
env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "quarantine_size_mb=0"]))
def peak_mb(steps, fmt, spec=spec):
    p = subprocess.Popen([bin, "--spec", spec, "--steps", str(steps), "--format", fmt, "--plot",
                          tmp + "/long.svg"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=env)
    _, status, usage = os.wait4(p.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, (steps, fmt, status)
    return usage.ru_maxrss / 1024
for fmt in ("csv", "json"):
    base, long = peak_mb(10, fmt), peak_mb(1000000, fmt)
    assert long - base < 40, f"{fmt}: peak memory {long:.0f} MB for 10^6 steps, {base:.0f} MB for 10"
# One-step SGDR cycles restart at every step: the restarts are streamed too (held whole, 10^6 of
# them took about 50 MB more).
every = '{"policy": "sgdr", "lr": 0.1, "cycle_len": 1}'
base, long = peak_mb(10, "json", every), peak_mb(1000000, "json", every)
assert long - base < 20, f"restarts: peak memory {long:.0f} MB for 10^6 steps, {base:.0f} MB for 10"
svg = open(tmp + "/long.svg").read()
points = re.search(r'<polyline[^>]*points="([^"]*)"', svg).group(1).split()
assert 4000 <= len(points) <= 16000, len(points)
out = subprocess.run([bin, "--spec", spec, "--steps", "2500", "--format", "json"],
                     capture_output=True, text=True, check=True).stdout
d = json.loads(out)
assert len(d["lr"]) == 2500 and len(d["momentum"]) == 2500 and d["restarts"] == [1000, 2000], d
d = json.loads(subprocess.run([bin, "--spec", every, "--steps", "4", "--format", "json"],
                              capture_output=True, text=True, check=True).stdout)
assert d["restarts"] == [1, 2, 3] and d["momentum_scheduled"] is False, d
PY
# A spec nested 400000 deep (a field's value) crashed lr_schedule (SIGSEGV): one line, exit 2.
python3 -c 'print("{\"policy\": \"constant\", \"lr\": " + "[" * 400000 + "]" * 400000 + "}")' \
  >"$tmp/deep.json"
expect_usage_error "spec is nested deeper than 64 levels" --spec "@$tmp/deep.json" --steps 3
# A spec file is read up to 1 MiB; a directory is named as one.
expect_usage_error "--spec @/dev/zero: more than 1 MiB" --spec @/dev/zero --steps 3
expect_usage_error "--spec @$tmp: is a directory" --spec "@$tmp" --steps 3
"$bin" --help | grep -q one_cycle || fail "--help does not list the policies"
echo "lr_schedule CLI test passed"
