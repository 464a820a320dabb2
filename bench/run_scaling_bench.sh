#!/usr/bin/env bash
# \brief Data-parallel scaling of `dfcl train` at 1 and 2 ranks (weak and strong), the all-reduce benchmark (dfcl's
# MPI Communicator against raw MPI_Allreduce), then bench/scaling_model.py: the α-β fit, the projection to 8-512 GPUs,
# the tables in docs/benchmarks.md and the SVG plot.
#
# Usage: bench/run_scaling_bench.sh [--help] [BUILD_DIR]   (default build/)
# Work per run: the criteo preset (12 features -> 64-32-32 -> 4 outputs, 2 arms), TSM-SL, Adam, on synthetic RCT rows
# generated in memory by every rank (train.generate=true, not timed), one thread per rank (OMP_NUM_THREADS=1,
# runtime.threads=1), a small validation set; samples/s is dfcl's own `samples_per_s` (global samples over the time
# inside training steps: the per-step counts all-reduce, forward, backward, the gradient all-reduce, the optimiser).
# 1 rank runs without mpirun (the local communicator: no collectives at all); 2 ranks run under mpirun --bind-to none,
# twice: Open MPI's default (a rank waiting in a collective busy-polls its core) and OMPI_MCA_mpi_yield_when_idle=1 (it
# yields the core while it waits), which matters on cores shared with other work. Control: two independent 1-rank
# runs at the same time (no MPI, no communication): what two processes get out of this machine's cores, the ceiling
# of any 2-rank result here.
# Configurations, each repeated DFCL_BENCH_REPS times, interleaved (rep 1 of every configuration, then rep 2, ...):
#   weak:   local batch L fixed: 1 rank x L against 2 ranks x L (global 2L), for L = 4,096 and 65,536;
#   strong: global batch 8,192 and 131,072 fixed, at 1 and 2 ranks.
# Environment: DFCL_BENCH_REPS (3), DFCL_SCALING_ROWS (RCT rows generated, 1048576; 80% train),
#   DFCL_SCALING_EPOCHS (5), DFCL_SCALING_OUT (results folder, BUILD_DIR/scaling), DFCL_SCALING_SVG (plot written,
#   docs/img/scaling.svg; empty: none), DFCL_SCALING_SKIP_ALLREDUCE=1 (reuse OUT/allreduce.json),
#   DFCL_SCALING_SKIP_TRAIN=1 (reuse OUT/train_runs.jsonl), DFCL_ALLREDUCE_ARGS (more bench_allreduce options).
# Writes OUT/train_runs.jsonl (one line per run), OUT/allreduce.json, OUT/allreduce.csv, OUT/report.md (the tables).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed -e 's/^# \{0,1\}//' -e 's/^\\brief //'; }
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
build=${1:-$root/build}
reps=${DFCL_BENCH_REPS:-3}
rows=${DFCL_SCALING_ROWS:-1048576}
epochs=${DFCL_SCALING_EPOCHS:-5}
out=${DFCL_SCALING_OUT:-$build/scaling}
svg=${DFCL_SCALING_SVG-$root/docs/img/scaling.svg}
py=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1

[ -f "$build/CMakeCache.txt" ] || cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDFCL_TESTS=OFF >&2
cmake --build "$build" --target dfcl dfcl_bench_allreduce >&2
dfcl=$build/src/cli/dfcl
mkdir -p "$out"

sets=(--set train.data= --set train.generate=true --set generate.rct_rows="$rows" --set generate.observational_rows=0
      --set generate.features=12 --set generate.arms=2 --set "generate.arm_values=[0,1]"
      --set "generate.rct_propensity=[0.5,0.5]" --set model.preset=criteo --set train.epochs="$epochs"
      --set validation.max_rows=2000 --set "validation.budgets=[0.5]" --set validation.patience=0
      --set runtime.threads=1 --set schedule.warmup_steps=0)

# run KIND RANKS GLOBAL_BATCH REP [MODE]: one `dfcl train` (MODE poll or yield: MPI's wait), or with MODE independent
# two 1-rank runs of GLOBAL_BATCH/2 at once (their samples/s summed); one line in OUT/train_runs.jsonl.
run() {
  local kind=$1 ranks=$2 batch=$3 rep=$4 mode=${5:-poll}
  local tag="${kind}_w${ranks}_b${batch}_${mode}_r${rep}" cmd=() jsons=()
  echo "[$(date +%T)] $tag (load $(cut -d' ' -f1 /proc/loadavg)) ..." >&2
  if [ "$mode" = independent ]; then
    for k in a b; do
      "$dfcl" -q train -c "$root/configs/train.yaml" "${sets[@]}" --set train.batch_size="$((batch / 2))" \
        --set train.output="$out/$tag$k" --json "$out/$tag$k.json" &
      jsons+=("$out/$tag$k.json")
    done
    wait
  else
    [ "$ranks" -gt 1 ] && cmd=(mpirun -n "$ranks" --bind-to none -x OMP_NUM_THREADS -x OMPI_MCA_mpi_yield_when_idle)
    OMPI_MCA_mpi_yield_when_idle=$([ "$mode" = yield ] && echo 1 || echo 0) "${cmd[@]}" "$dfcl" -q train \
      -c "$root/configs/train.yaml" "${sets[@]}" --set train.batch_size="$batch" --set train.output="$out/$tag" \
      --json "$out/$tag.json"
    jsons=("$out/$tag.json")
  fi
  "$py" - "$kind" "$ranks" "$batch" "$rep" "$mode" "$(cut -d' ' -f1 /proc/loadavg)" "${jsons[@]}" \
    >>"$out/train_runs.jsonl" <<'PY'
import json, sys
kind, ranks, batch, rep, mode, load, *paths = sys.argv[1:]
js = [json.load(open(p)) for p in paths]
print(json.dumps({"kind": kind, "ranks": int(ranks), "global_batch": int(batch), "rep": int(rep), "mode": mode,
                  "world_size": js[0]["world_size"], "backend": js[0]["backend"], "steps": js[0]["steps"],
                  "samples_per_s": sum(j["samples_per_s"] for j in js), "parts": [j["samples_per_s"] for j in js],
                  "fused": js[0]["fused"], "load_after": float(load)}))
PY
}

if [ "${DFCL_SCALING_SKIP_TRAIN:-0}" != 1 ]; then
  : >"$out/train_runs.jsonl"
  for r in $(seq 1 "$reps"); do
    run weak4k 1 4096 "$r"
    run weak4k 2 8192 "$r" poll
    run strong8k 1 8192 "$r"  # strong 8k at 2 ranks is the weak4k 2-rank run (global 8,192)
    run weak4k 2 8192 "$r" yield
    run weak4k 2 8192 "$r" independent
    run weak64k 1 65536 "$r"
    run weak64k 2 131072 "$r" poll
    run strong128k 1 131072 "$r"  # strong 128k at 2 ranks is the weak64k 2-rank run
    run weak64k 2 131072 "$r" yield
    run weak64k 2 131072 "$r" independent
  done
fi

if [ "${DFCL_SCALING_SKIP_ALLREDUCE:-0}" != 1 ]; then
  echo "[$(date +%T)] all-reduce benchmark, 2 ranks (load $(cut -d' ' -f1 /proc/loadavg)) ..." >&2
  # shellcheck disable=SC2086
  mpirun -n 2 --bind-to none "$build/bench/dfcl_bench_allreduce" --format json ${DFCL_ALLREDUCE_ARGS:-} >"$out/allreduce.json"
  "$py" - "$out/allreduce.json" >"$out/allreduce.csv" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
keys = ["bytes", "method", "median_us", "p10_us", "p90_us", "algbw_GBps", "busbw_GBps", "time_over_mpi", "batch"]
print(",".join(keys))
for r in d["results"]:
    print(",".join(str(r[k]) for k in keys))
PY
fi

# The trained model's parameter count and gradient buckets, from the trainer's own log line (a short 2-rank run):
# the projection checks its layout count against it.
layout=$(mpirun -n 2 --bind-to none -x OMP_NUM_THREADS "$dfcl" train -c "$root/configs/train.yaml" "${sets[@]}" \
  --set generate.rct_rows=20000 --set train.epochs=1 --set train.batch_size=1024 --set train.output="$out/layout" \
  --json "$out/layout.json" 2>&1 | grep -o '[0-9]* parameters, [0-9]* gradient bucket' | head -1)
echo "trainer: $layout" >&2
"$py" "$root/bench/scaling_model.py" --allreduce "$out/allreduce.json" --train-runs "$out/train_runs.jsonl" \
  --trainer-layout "$layout" ${svg:+--svg "$svg"} | tee "$out/report.md"
