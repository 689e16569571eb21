#!/usr/bin/env bash
# ./bin/mlp_demo and ./bin/cyclone_info: --help prints usage (exit 0); a bad flag or value is one
# line naming it, exit 2, before any work (nothing on stdout); a short demo run trains.
# Usage: test_small_apps_cli.sh /path/to/mlp_demo /path/to/cyclone_info
set -euo pipefail
mlp=$1 info=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/small_apps_test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_usage_error() {  # expect_usage_error <needle> <command...>
  local needle=$1; shift
  set +e
  "$@" >"$tmp/stdout" 2>"$tmp/stderr"
  local rc=$?
  set -e
  [[ $rc -eq 2 ]] || fail "exit $rc (want 2) for: $* -> $(cat "$tmp/stderr")"
  [[ $(wc -l <"$tmp/stderr") -eq 1 ]] || fail "stderr is not one line for: $* -> $(cat "$tmp/stderr")"
  grep -qF -- "$needle" "$tmp/stderr" || fail "stderr '$(cat "$tmp/stderr")' lacks '$needle'"
  [[ ! -s $tmp/stdout ]] || fail "stdout not empty for: $*"
}

expect_usage_error "--batch_size must be in [1, 4096], got 100000" "$mlp" --batch_size=100000
expect_usage_error "--epochs: '2.9' is not an integer" "$mlp" --epochs=2.9
expect_usage_error "--seed: '1e30'" "$mlp" --seed=1e30
expect_usage_error "--momentum must be in [0, 1), got 5" "$mlp" --momentum=5
expect_usage_error "--lr must be > 0" "$mlp" --lr=0
expect_usage_error "--device: 'gpu' is not auto, cpu, cuda or cuda:N" "$mlp" --device=gpu
expect_usage_error "unknown flag '--epoch'" "$mlp" --epoch=2
"$mlp" --help >"$tmp/help" || fail "mlp_demo --help exit $?"
grep -q -- "--batch_size" "$tmp/help" || fail "mlp_demo --help lacks --batch_size"
"$mlp" --device=cpu --epochs=1 --batch_size=4096 >"$tmp/run" || fail "mlp_demo run exit $?"
grep -q "^epoch 1/1  train loss [0-9]" "$tmp/run" || fail "mlp_demo run: $(cat "$tmp/run")"

expect_usage_error "unknown flag '--bogus'" "$info" --bogus
expect_usage_error "unexpected argument 'x'" "$info" x
"$info" --help >"$tmp/help" || fail "cyclone_info --help exit $?"
grep -q "^usage: cyclone_info" "$tmp/help" || fail "cyclone_info --help: $(cat "$tmp/help")"
! grep -q "cuda devices" "$tmp/help" || fail "cyclone_info --help printed the info"
"$info" | grep -q "^cuda backend: " || fail "cyclone_info prints no facts"
echo "small apps CLI test passed"
