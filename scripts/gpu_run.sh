#!/usr/bin/env bash
# One GPU run (GPU.md, "What a GPU run should always do"), on the GPU host, from the repository
# root, with dist-bundle/ (scripts/gpu_bundle.sh) carried:
#   1. the device (nvidia-smi) and the library versions the binaries actually load -> info.txt
#   2. every gtest executable, then once more with CUDA_VISIBLE_DEVICES= (the CPU path on a GPU
#      host)                                                                     -> tests.log
#   2b. best_lr on the GPU (range test + 2 short epochs, synthetic data) -> best_lr_gpu.log
#   2c. mpirun (the bundle's Open MPI), one rank per GPU: the NCCL communicator's tests, the
#      all-reduce benchmark and a short best_lr through NCCL   -> nccl.log, allreduce.json
#   3. cyclone_bench (median of repetitions)                                     -> bench.json
#      and the PyTorch reference on the same GPU                                 -> torch.json
#   3a. every cuDNN algorithm's error on LeNet-5's first and WRN-28-10's 3x3 layers in fp32
#      (bin/cyclone_conv_algos)                                                 -> conv_algos.txt
#   3b. end-to-end training throughput, cyclone_bench_train and PyTorch's train.py on the same GPU
#      (TRAIN_BENCH=0 skips it)          -> train_cyclone.json, train_torch.json, train.json
#      and the BN-ReLU fusion's A/B (engine cyclone-unfused; TRAIN_UNFUSED=0 skips it)
#   3c. the WRN-28-10 bf16 channels-last step kernel by kernel: PyTorch's (torch.profiler) and
#      Cyclone's (Nsight Compute; PROFILE=0 skips both) -> profile_pytorch.txt, profile_cyclone.txt
#   4. the CUDA tests under compute-sanitizer memcheck (last: the slowest, and cut first)
#                                                                                -> memcheck.log
#   5. the ratio tables, the failed steps and the run's identity                 -> summary.txt
# Every step runs even when one before it failed, each under a timeout (none can hang the run);
# the script exits 1 if any failed. Progress lines (step, result, seconds since the start) go to
# stdout as each step ends. The steps share one cuDNN algorithm cache (CYCLONE_CUDNN_CACHE), so
# each convolution shape is searched once. Tests that find their fixtures through __FILE__ see the
# repository at the path it was built from (MANIFEST's source line; a symbolic link is made).
# Output goes to logs/gpu-<UTC date>/, or, under the device tool (OUT set), to a folder of its
# own packed into $OUT/gpu_run.tar.gz after every step (the tool returns at most 8 files, and a
# run stopped at its time limit still returns all it did), with summary.txt beside it at the end.
#
# GPU_PLAN=quick sizes the run for one 10-minute command of a 15-minute lease, most important
# first: the CUDA tests once (no CPU-only pass; 200 s for all of them, GPU_TESTS_BUDGET_S), a
# shorter best_lr, memcheck on the kernel and layer tests only, the GEMM peak, batch-norm and bf16
# convolution benchmarks (3 repetitions) with PyTorch's batch norm, and LeNet-5 bs64 and WRN-28-10
# bs128 training (fp32 and bf16, graph and channels last, 30 steps x 3 reps) beside PyTorch eager
# and AMP, then the fusion A/B on WRN-28-10 bf16, then that step's kernel-time breakdowns (about
# 270 s in all on an H200). It also keeps to a deadline (GPU_DEADLINE_S, default 540 s from the
# start): a step that would start later is skipped and recorded, and each step's timeout is cut to
# what is left.
# GPU_PLAN=train: the training table's cells the quick plan leaves out, for a second call of the
# same lease: the identity, the bf16 GEMM peak (for the 40% target), then cyclone_bench_train and
# PyTorch's train.py over every workload (LeNet-5 at batch 64 and 128, ResNet-56, WRN-28-10, the
# 4000-step LeNet-5 range test) in fp32, tf32, bf16 and fp16 (30 steps x 3 reps; torch.compile in
# fp32 on LeNet-5 and ResNet-56, whose compilation fits), no tests, memcheck or profiles; the
# quick plan's deadline.
# GPU_PLAN=full (the default) is everything above, with no deadline.
#
# env: GPU_PLAN (full), CYCLONE_BUNDLE (default dist-bundle), BENCH_REPS (5), BENCH_MIN_TIME (0.2 s),
#      MEMCHECK_FILTER (gtest filter, default the CUDA tests), MEMCHECK_TIMEOUT (s, default 300),
#      BENCH_FILTER (cyclone_bench --benchmark_filter, default all), PYTHON (default python3),
#      GPU_DEADLINE_S (quick: 540; 0 for none), GPU_TESTS_BUDGET_S (quick: 200),
#      TRAIN_BENCH, TRAIN_UNFUSED (1; 0 skips the training benchmark / its fusion A/B)
set -euo pipefail
exec 3>&1  # progress lines, whatever a step's output is redirected to

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
bundle=${CYCLONE_BUNDLE:-dist-bundle}
plan=${GPU_PLAN:-full}
if [[ $plan != full && $plan != quick && $plan != train ]]; then
  echo "gpu_run.sh: GPU_PLAN=$plan is not 'full', 'quick' or 'train'" >&2
  exit 2
fi
pack_to=${OUT:-}
if [[ -n $pack_to ]]; then
  out=$(mktemp -d)/gpu_run
else
  out=$repo/logs/gpu-$(date -u +%Y%m%dT%H%M%SZ)
fi
python=${PYTHON:-python3}
mkdir -p "$out"
if [[ ! -d $bundle ]]; then
  echo "gpu_run.sh: no bundle at $bundle (make it with scripts/gpu_bundle.sh and carry it)" >&2
  exit 2
fi
bundle=$(cd "$bundle" && pwd)
deadline=${GPU_DEADLINE_S:-$([[ $plan != full ]] && echo 540 || echo 0)}
host_ld=${LD_LIBRARY_PATH-}  # for Python: PyTorch brings its own libraries, not Debian's
smi=$(command -v nvidia-smi || echo /usr/local/nvidia/bin/nvidia-smi)
export CYCLONE_CUDNN_CACHE=${CYCLONE_CUDNN_CACHE:-$out/cudnn_algos.json}
# The revision the bundle was built from (its MANIFEST): what runs. The checkout's HEAD only when
# the bundle does not say (the device tool's copy of .git can lag behind the working tree).
rev=$(sed -n 's/^git: \([0-9a-f]*\).*/\1/p' "$bundle/MANIFEST" 2>/dev/null || true)
[[ -n $rev ]] || rev=$(git rev-parse HEAD 2>/dev/null || true)
rev=${rev:-unknown}
# The tests' fixtures are found through __FILE__, the path the bundle was built from.
src=$(sed -n 's/^source: //p' "$bundle/MANIFEST" 2>/dev/null || true)
if [[ -n $src && $src != "$repo" && ! -e $src ]]; then
  mkdir -p "$(dirname "$src")" && ln -s "$repo" "$src" ||
    echo "gpu_run.sh: could not link $src to $repo (fixture tests will fail)" >&2
fi

failed=()
notes=()

# Under the device tool: everything so far, as one archive in $OUT (replaced whole, never torn).
pack() {
  [[ -n $pack_to ]] || return 0
  tar -czf "$pack_to/gpu_run.tar.gz.part" -C "$(dirname "$out")" "$(basename "$out")" &&
    mv "$pack_to/gpu_run.tar.gz.part" "$pack_to/gpu_run.tar.gz"
}
quick() { [[ $plan == quick ]]; }
train_plan() { [[ $plan == train ]]; }  # the training table only
pyrun=(env "LD_LIBRARY_PATH=$host_ld" "$python")  # under t (timeout runs programs only)
# Seconds left before the deadline (a large number when there is none).
left() { ((deadline > 0)) && echo $((deadline - SECONDS)) || echo 100000; }
# t SECONDS CMD...: CMD under a timeout of SECONDS, cut to what is left before the deadline.
t() {
  local s=$1 l
  shift
  l=$(($(left) - 5))
  ((l < s)) && s=$((l > 1 ? l : 1))
  timeout -k 10 "$s" "$@"
}
# step NAME CMD...: runs CMD, records NAME as failed on a non-zero exit, never stops the script;
# skipped (and recorded) when under 20 s are left. Its own lines go to stderr (a step's stdout may
# be a JSON file), and one line per step to the progress stream.
step() {
  local name=$1
  shift
  if (($(left) < 20)); then
    echo "== $name: SKIPPED (deadline)" >&3
    failed+=("$name (skipped: no time left)")
    return 0
  fi
  echo "== $name" >&2
  local rc=0
  "$@" || rc=$?
  if ((rc == 0)); then
    echo "== $name: ok" >&2
    echo "== $name: ok (${SECONDS} s)" >&3
  else
    echo "== $name: FAILED (exit $rc)" >&2
    echo "== $name: FAILED (exit $rc, ${SECONDS} s)" >&3
    failed+=("$name")
  fi
  pack || echo "== could not pack $out into $pack_to" >&2
}

# ---- libraries: setup_libraries (scripts/gpu_env.sh) ----
source "$repo/scripts/gpu_env.sh"

# ---- 1. identity ----
info() {
  local rc=0 ci
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "git: $rev"
  [[ -f $bundle/MANIFEST ]] && sed -n '2,3s/^/bundle /p' "$bundle/MANIFEST"
  setup_libraries || rc=1
  t 30 "$smi" --query-gpu=name,driver_version,memory.total --format=csv || rc=1
  ci=$(t 30 "$bundle/bin/cyclone_info") || rc=1
  echo "$ci"
  # No device seen (libcuda missing, a driver mismatch) would turn every CUDA test into a skip.
  if [[ $ci != *"cuda devices: "[1-9]* ]]; then
    echo "cyclone_info sees no CUDA device"
    rc=1
  fi
  return "$rc"
}
# Not through a pipe: setup_libraries must export LD_LIBRARY_PATH into this shell.
step info info >"$out/info.txt" 2>&1
cat "$out/info.txt"
if [[ -z ${CYCLONE_PEAK_GBPS:-} ]] && grep -q "H200" "$out/info.txt"; then
  export CYCLONE_PEAK_GBPS=4800  # H200 HBM3e; the benchmarks default to the H100's 3350
fi

# ---- 2. tests (not in the train plan) ----
if ! train_plan; then
: >"$out/tests.log"
test_filter='*'
quick && test_filter='*Cuda*:*/cuda*'
# Quick: the test executables share GPU_TESTS_BUDGET_S (200 s), so that nine of them running
# long (or hanging up to their 120 s each) cannot take the minutes the benchmarks need.
tests_end=$((SECONDS + ${GPU_TESTS_BUDGET_S:-200}))
for exe in "$bundle"/tests/cyclone_tests_*; do
  [[ -x $exe ]] || continue
  test_s=600
  if quick; then
    test_s=$((tests_end - SECONDS))
    ((test_s > 120)) && test_s=120
    if ((test_s < 5)); then
      echo "== $(basename "$exe"): SKIPPED (tests' budget)" >&3
      failed+=("$(basename "$exe") (skipped: GPU_TESTS_BUDGET_S spent)")
      continue
    fi
  fi
  step "$(basename "$exe")" t "$test_s" "$exe" --gtest_color=no \
    --gtest_filter="$test_filter" >>"$out/tests.log" 2>&1
done
# Tests skipped on a GPU host, each once (gtest repeats the name in its summary), except those
# that need more GPUs than the host has: skipped for want of a device, they would hide a failure.
skipped=$(awk '/^\[  SKIPPED \] .* \([0-9]+ ms\)$/ && prev !~ /needs two CUDA devices/ {n++}
  {prev = $0} END {print n + 0}' "$out/tests.log")
if quick && ((skipped > 0)); then
  failed+=("tests: $skipped CUDA tests SKIPPED on a GPU host")
fi
quick || for exe in "$bundle"/tests/cyclone_tests_*; do
  [[ -x $exe ]] || continue
  echo "== $(basename "$exe") with CUDA_VISIBLE_DEVICES= (the CPU path on a GPU host)" \
    >>"$out/tests.log"
  step "$(basename "$exe") (no GPU visible)" t 600 env CUDA_VISIBLE_DEVICES= "$exe" \
    --gtest_color=no >>"$out/tests.log" 2>&1
done
skipped=$(grep -c '^\[  SKIPPED \]' "$out/tests.log" || true)
notes+=("tests: $skipped SKIPPED lines in tests.log (a no-GPU pass, if any, skips the CUDA tests)")
fi

# ---- 2b. best_lr end to end on the GPU: range test + a short cyclic training (synthetic data) ----
best_lr_size=(--num_learning_batches=200 --num_epochs=2 --limit_train_batches=100)
quick && best_lr_size=(--num_learning_batches=100 --num_epochs=1 --limit_train_batches=50)
train_plan || step best_lr_gpu t 90 "$bundle/bin/best_lr" --dataset=synthetic --device=cuda --model=resnet20 \
  --batch_size=128 "${best_lr_size[@]}" --cycle \
  --policy=one_cycle --log_dir="$out/best_lr_gpu" >"$out/best_lr_gpu.log" 2>&1

# ---- 2c. data parallel over NCCL (issue 9): mpirun, one rank per GPU ----
# The bundle's Open MPI (gpu_bundle.sh), relocated to a temporary folder by OPAL_PREFIX: the NCCL
# communicator's tests (CommunicatorCuda), the all-reduce benchmark (NCCL between the GPUs; a
# world of one on a one-GPU host, which still runs the communicator and the bucketed reduction)
# and short best_lr runs trained through it (the second with synchronized batch norm).
nccl() {
  local tmp prefix gpus rc=0
  tmp=$(mktemp -d)
  tar -C "$tmp" -xJf "$bundle/ompi.tar.xz" || return 1
  prefix=$tmp/ompi
  gpus=$(t 30 "$smi" --query-gpu=name --format=csv,noheader 2>/dev/null | grep -c . || true)
  ((gpus >= 1)) || gpus=1
  local mpi=(env OPAL_PREFIX="$prefix" PMIX_INSTALL_PREFIX="$prefix/lib/x86_64-linux-gnu/pmix2"
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml=ob1
    OMPI_MCA_btl=self,vader PMIX_MCA_pcompress_base_silence_warning=1
    LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$prefix/extra-lib"
    "$prefix/bin/mpirun" -np "$gpus" -x LD_LIBRARY_PATH -x CYCLONE_CUDNN_CACHE)
  echo "== mpirun -np $gpus (one rank per GPU)"
  t 120 "${mpi[@]}" "$bundle/tests/cyclone_tests_dist" --gtest_color=no \
    --gtest_filter='*Cuda*' || rc=1
  t 120 "${mpi[@]}" "$bundle/bin/cyclone_bench_allreduce" --device=cuda --iters=20 \
    --out="$out/allreduce.json" || rc=1
  t 120 "${mpi[@]}" "$bundle/bin/best_lr" --dataset=synthetic --device=cuda --model=resnet20 \
    --batch_size=128 --num_learning_batches=50 --num_epochs=1 --limit_train_batches=30 --cycle \
    --policy=one_cycle --log_dir="$out/best_lr_nccl" || rc=1
  # Synchronized batch norm: its sums all-reduced on the GPU through NCCL (kernels/sync_batchnorm.h).
  t 120 "${mpi[@]}" "$bundle/bin/best_lr" --dataset=synthetic --device=cuda --model=resnet20 \
    --batch_size=128 --skip_test=0.05 --num_epochs=1 --limit_train_batches=30 --sync_bn \
    --log_dir="$out/best_lr_nccl_sync_bn" || rc=1
  rm -rf "$out/best_lr_nccl/checkpoints" "$out/best_lr_nccl_sync_bn/checkpoints" "$tmp"
  return "$rc"
}
if train_plan; then
  :
elif [[ -f $bundle/ompi.tar.xz ]]; then
  step nccl nccl >"$out/nccl.log" 2>&1
else
  notes+=("nccl: the bundle has no ompi.tar.xz (no Open MPI where it was built)")
fi

# ---- 3. benchmarks, Cyclone and PyTorch side by side ----
bench_filter=${BENCH_FILTER:-.}
quick && bench_filter=${BENCH_FILTER:-'BM_(gemm/cuda/bf16/8192|(batchnorm|bn_then)[a-z_]*/cuda|conv_[a-z_]+/cuda/bf16)'}
train_plan && bench_filter=${BENCH_FILTER:-'BM_gemm/cuda/bf16/8192'}
bench() {
  local rc=0
  t "$(quick && echo 150 || echo 600)" "$bundle/bin/cyclone_bench" \
    --benchmark_repetitions="${BENCH_REPS:-$(quick || train_plan && echo 3 || echo 5)}" \
    --benchmark_report_aggregates_only=true --benchmark_min_time="${BENCH_MIN_TIME:-0.2}" \
    --benchmark_filter="$bench_filter" \
    --benchmark_out="$out/bench.json" --benchmark_out_format=json || rc=$?
  if [[ ! -s $out/bench.json ]]; then
    echo "cyclone_bench wrote no bench.json (exit $rc)"
    return 1
  fi
  # A case that failed (a kernel error, or "no CUDA device" on a GPU host) fails the step.
  if grep -q '"error_occurred": true' "$out/bench.json"; then
    echo "cases with errors:"
    grep -B12 '"error_occurred": true' "$out/bench.json" | grep '"name"' || true
    return 1
  fi
  return "$rc"
}
step bench bench >"$out/bench.log" 2>&1
if train_plan; then
  echo '{"runs": []}' >"$out/torch.json"  # no kernel benchmarks: the GEMM has no PyTorch row
elif quick; then
  step pytorch t 60 "${pyrun[@]}" benchmarks/pytorch/kernels.py --device cuda --filter batchnorm \
    >"$out/torch.json" 2>>"$out/bench.log"
else
  step pytorch t 600 "${pyrun[@]}" benchmarks/pytorch/kernels.py --device all >"$out/torch.json" \
    2>>"$out/bench.log"
  step pytorch_models t 600 "${pyrun[@]}" benchmarks/pytorch/models.py --device all \
    >"$out/torch_models.json" 2>>"$out/bench.log"
fi

# ---- 3a. cuDNN's algorithms one by one on the shapes that decide the fp32 policy ----
# fp32 (FMA math) takes the non-fused Winograd algorithms for 3x3 filters only
# (kernels/cuda/conv.cpp): this keeps the evidence current, their error on WRN-28-10's 3x3 layers
# (batch 2: the same tiles, a host reference in seconds) and on LeNet-5's 5x5 first layer, the
# case that failed.
conv_algos() {
  local shape rc=0
  for shape in "" "2 160 32 32 160 3 3 1 1" "2 320 16 16 320 3 3 1 1" "2 640 8 8 640 3 3 1 1"; do
    # shellcheck disable=SC2086  # the shape is five to nine words
    t 60 "$bundle/bin/cyclone_conv_algos" --dtype=float32 $shape || rc=1
  done
  return "$rc"
}
if train_plan; then
  :
elif [[ -x $bundle/bin/cyclone_conv_algos ]]; then
  step conv_algos conv_algos >"$out/conv_algos.txt" 2>&1
else
  notes+=("conv_algos: the bundle has no cyclone_conv_algos (built before it existed)")
fi

# ---- 3b. end-to-end training, Cyclone and PyTorch side by side (benchmarks/train_report.py) ----
if [[ ${TRAIN_BENCH:-1} != 0 ]]; then
  gpu_name=$(t 30 "$smi" --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)
  gpu_driver=$(t 30 "$smi" --query-gpu=driver_version --format=csv,noheader 2>/dev/null |
    head -1 || true)
  train_size=() torch_size=() unfused_size=()
  # shellcheck disable=SC2054  # the commas separate the values of one flag
  if quick; then
    train_size=(--workloads=lenet5-train-bs64,wrn-28-10-train-bs128 --precisions=fp32,bf16
      --engines=cyclone,cyclone-channels-last --steps=30 --reps=3 --warmup=10)
    # Only the precisions Cyclone's side measures: tf32 and fp16 rows would have no partner.
    torch_size=(--workloads=lenet5-train-bs64,wrn-28-10-train-bs128
      --engines=pytorch-eager,pytorch-amp-channels-last --precisions=fp32,bf16 --steps=30 --reps=3
      --warmup=10)
    unfused_size=(--workloads=wrn-28-10-train-bs128 --precisions=bf16 --steps=30 --reps=3
      --warmup=10)
  elif train_plan; then
    all_workloads=lenet5-train-bs64,lenet5-train-bs128,resnet56-train-bs128,wrn-28-10-train-bs128
    all_workloads+=,lenet5-range-test-4000
    train_size=(--workloads="$all_workloads" --precisions=fp32,tf32,bf16,fp16
      --engines=cyclone,cyclone-channels-last --steps=30 --reps=3 --warmup=10)
    torch_size=(--workloads="$all_workloads" --engines=pytorch-eager,pytorch-amp-channels-last
      --precisions=fp32,tf32,bf16,fp16 --steps=30 --reps=3 --warmup=10)
  fi
  # merge_runs MAIN EXTRA: EXTRA's rows appended to MAIN's "runs" (when EXTRA has any), MAIN
  # replaced whole (a temporary file renamed), so a kill mid-write cannot tear it.
  merge_runs() {
    [[ -s $2 ]] || return 0
    t 30 "${pyrun[@]}" -c 'import json, os, sys
a = json.load(open(sys.argv[1]))
a["runs"] += json.load(open(sys.argv[2]))["runs"]
json.dump(a, open(sys.argv[1] + ".part", "w"), indent=2)
os.replace(sys.argv[1] + ".part", sys.argv[1])' "$1" "$2" || echo "could not merge $2 into $1" >&2
  }
  # --out: the JSON rewritten after every case, so a step cut by its timeout keeps the cases it
  # finished (stdout, printed at the end, would then be empty). A bundle built before
  # cyclone_bench_train had --out gives its JSON on stdout instead.
  train_has_out=0
  t 30 "$bundle/bin/cyclone_bench_train" --help 2>/dev/null | grep -q -- '--out' && train_has_out=1
  # to_file FILE CMD...: CMD's JSON into FILE, through --out where it has it.
  to_file() {
    local file=$1
    shift
    if ((train_has_out)); then "$@" --out="$file" >/dev/null; else "$@" >"$file"; fi
  }
  step train_cyclone to_file "$out/train_cyclone.json" \
    t "$(quick && echo 150 || { train_plan && echo 240; } || echo 600)" \
    "$bundle/bin/cyclone_bench_train" --device=cuda --device_name="$gpu_name" \
    --driver="$gpu_driver" --git_rev="${rev:0:12}" "${train_size[@]}" 2>"$out/train_bench.log"
  step train_pytorch t "$(quick && echo 120 || { train_plan && echo 180; } || echo 600)" \
    "${pyrun[@]}" benchmarks/pytorch/train.py --device cuda "${torch_size[@]}" \
    --out "$out/train_torch.json" >/dev/null 2>>"$out/train_bench.log"
  # torch.compile where its compilation fits the call, merged into train_torch.json.
  if train_plan && [[ -s $out/train_torch.json ]]; then
    step train_pytorch_compile t 120 "${pyrun[@]}" benchmarks/pytorch/train.py --device cuda \
      --workloads=lenet5-train-bs64,resnet56-train-bs128 --engines=pytorch-compile \
      --precisions=fp32 --steps=30 --reps=3 --warmup=10 --out "$out/train_compile.json" \
      >/dev/null 2>>"$out/train_bench.log"
    merge_runs "$out/train_torch.json" "$out/train_compile.json"
  fi
  # The BN-ReLU fusion's A/B on the networks that have the pairs (train_report.py prints the
  # ratios), merged into train_cyclone.json. TRAIN_UNFUSED=0 skips it.
  if [[ ${TRAIN_UNFUSED:-1} != 0 && -s $out/train_cyclone.json ]] && ! train_plan; then
    # shellcheck disable=SC2054
    ((${#unfused_size[@]})) ||
      unfused_size=(--workloads=resnet56-train-bs128,wrn-28-10-train-bs128 --precisions=fp32,bf16)
    step train_unfused to_file "$out/train_unfused.json" t "$(quick && echo 60 || echo 600)" \
      "$bundle/bin/cyclone_bench_train" --device=cuda --engines=cyclone-unfused \
      "${unfused_size[@]}" 2>>"$out/train_bench.log"
    # Replaced whole (a temporary file renamed), so a kill mid-write cannot tear the main file.
    merge_runs "$out/train_cyclone.json" "$out/train_unfused.json"
  fi
fi

# ---- 3c. where a training step's time goes: WRN-28-10 bf16 channels last, kernel by kernel ----
# PyTorch's step under torch.profiler, Cyclone's under Nsight Compute (each graph node timed;
# the cuDNN cache above spares the search), both summed per category and kernel. PROFILE=0 skips.
if [[ ${PROFILE:-1} != 0 ]] && ! train_plan; then
  step profile_pytorch t 90 "${pyrun[@]}" benchmarks/pytorch/profile_step.py \
    --workload wrn-28-10-train-bs128 --precision bf16 --top 60 >"$out/profile_pytorch.txt" 2>&1
  profile_cyclone() {
    local rc=0
    t 120 ncu --clock-control none --graph-profiling node --metrics gpu__time_duration.sum \
      --csv --page raw "$bundle/bin/cyclone_bench_train" --device=cuda \
      --workloads=wrn-28-10-train-bs128 --precisions=bf16 --engines=cyclone-channels-last \
      --warmup=2 --steps=2 --reps=1 >"$out/ncu_step.csv" 2>"$out/ncu.log" || rc=$?
    if ((rc == 0)); then
      t 60 "${pyrun[@]}" benchmarks/kernel_breakdown.py "$out/ncu_step.csv" --top 60 \
        >"$out/profile_cyclone.txt" 2>&1 || rc=$?
    fi
    gzip -f "$out/ncu_step.csv"
    return "$rc"
  }
  if command -v ncu >/dev/null; then
    step profile_cyclone profile_cyclone
  else
    notes+=("profile_cyclone: no ncu (Nsight Compute) on this host")
  fi
fi

# ---- 4. memcheck on the CUDA tests (last: the slowest step, cut first by the deadline) ----
memcheck() {
  local exe rc=0
  for exe in "$bundle"/tests/cyclone_tests_*; do
    [[ -x $exe ]] || continue
    if quick && [[ $exe != *_kernels && $exe != *_layers ]]; then continue; fi
    echo "== memcheck $(basename "$exe")"
    t "${MEMCHECK_TIMEOUT:-$(quick && echo 150 || echo 300)}" compute-sanitizer --tool memcheck \
      --error-exitcode 1 "$exe" --gtest_color=no \
      --gtest_filter="${MEMCHECK_FILTER:-*Cuda*:*/cuda*}" || rc=1
  done
  return "$rc"
}
if train_plan; then
  :
elif command -v compute-sanitizer >/dev/null; then
  step memcheck memcheck >"$out/memcheck.log" 2>&1
  if grep -q "Device not supported" "$out/memcheck.log"; then
    # Seen on gVisor hosts: the sanitizer cannot attach there at all; that is the host, not us.
    notes+=("memcheck: compute-sanitizer does not support this host (Device not supported)")
  fi
else
  echo "compute-sanitizer not on PATH" >"$out/memcheck.log"
  failed+=("memcheck (no compute-sanitizer)")
fi

# ---- 5. summary ----
{
  echo "cyclone GPU run $(date -u +%Y-%m-%dT%H:%M:%SZ), git $rev"
  grep -A1 '^name, driver_version' "$out/info.txt" || true
  grep -E '^(libraries|cuda devices):' "$out/info.txt" || true
  echo
  compare_inputs=("$out/bench.json" "$out/torch.json")
  [[ -s $out/torch_models.json ]] && compare_inputs+=("$out/torch_models.json")
  t 60 "${pyrun[@]}" benchmarks/compare.py "${compare_inputs[@]}" || echo "compare.py failed"
  echo
  if [[ -s $out/train_cyclone.json || -s $out/train_torch.json ]]; then
    # A side that wrote nothing is a side with no rows (the table shows "—"), not a lost table.
    train_inputs=()
    for f in "$out/train_cyclone.json" "$out/train_torch.json"; do
      if [[ -s $f ]]; then
        train_inputs+=("$f")
      else
        echo "note: $(basename "$f") is empty or missing: that side has no rows below"
        echo '{"runs": []}' >"$f.none"
        train_inputs+=("$f.none")
      fi
    done
    t 60 "${pyrun[@]}" benchmarks/train_report.py "${train_inputs[@]}" \
      --out "$out/train.json" --markdown --check-targets --gemm-bench "$out/bench.json" ||
      echo "train_report.py failed"
    echo
  fi
  # Where the WRN-28-10 bf16 step's time goes, per category (the kernels are in the files).
  for f in profile_pytorch profile_cyclone; do
    [[ -s $out/$f.txt ]] || continue
    echo "$f (us per step):"
    grep -E '^(total|conv/gemm|batchnorm|optimizer|other) ' "$out/$f.txt" || true
    echo
  done
  for n in "${notes[@]}"; do echo "note: $n"; done
  if ((${#failed[@]})); then
    echo "FAILED steps: ${failed[*]}"
  else
    echo "all steps passed"
  fi
} >"$out/summary.txt" 2>&1
cat "$out/summary.txt"
pack || true
[[ -n $pack_to ]] && cp "$out/summary.txt" "$pack_to/summary.txt"
((${#failed[@]} == 0))
