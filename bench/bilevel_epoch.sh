#!/usr/bin/env bash
# Epoch wall time of Bi-DFCL against TSM-SL on both parts (trial + log), same data, model, batch and threads, with the
# bi-level step's per-phase breakdown and mean CG iterations (docs/benchmarks.md, "Bi-DFCL epoch cost").
#   bench/bilevel_epoch.sh [LOG_ROWS] [EPOCHS]      (defaults 500000, 2; in-memory synthetic data, no HDF5 needed)
# Epoch time = the trainer's time in training steps per epoch (validation excluded); the teacher is trained once,
# before the timed runs. Bi-DFCL runs with warm_start_epochs = 0, so every timed epoch has its upper steps.
set -euo pipefail
cd "$(dirname "$0")/.."
DFCL=${DFCL:-build/src/cli/dfcl}
LOG=${1:-500000}
EPOCHS=${2:-2}
OUT=${OUT:-out/bench_bilevel}
THREADS=${THREADS:-$(nproc)}
mkdir -p "$OUT"
common=(--set train.generate=true --set train.data=[] --set generate.family=marketing --set generate.rct_rows=30000
        --set generate.observational_rows="$LOG" --set generate.arms=5 --set train.batch_size=4096
        --set runtime.threads="$THREADS" --set train.epochs="$EPOCHS" --set validation.every=1000)
teacher="$OUT/teacher/best.ckpt"
if [ ! -f "$teacher" ]; then
  "$DFCL" -q train -c configs/train.yaml "${common[@]}" --set train.source=rct \
    --set train.epochs=10 --set validation.every=1 --set validation.metric=loss --set train.output="$OUT/teacher" \
    --json "$OUT/teacher.json" > /dev/null
fi
run() {  # name, extra --set arguments...
  local name=$1; shift
  "$DFCL" -q train "${common[@]}" --set train.output="$OUT/$name" --json "$OUT/$name.json" "$@" > /dev/null
}
# the peer: TSM-SL on the trial and the log together (configs/train.yaml's model and optimiser, the same batch)
run tsm_both -c configs/train.yaml --set train.source=all --set model.preset=criteo --set validation.metric=loss \
  --set validation.budgets=[0.3,0.6,1.0] --set schedule.warmup_steps=20
bi=(-c configs/bidfcl.yaml --set bilevel.teacher="$teacher" --set bilevel.warm_start_epochs=0)
run bidfcl_exact "${bi[@]}"
run bidfcl_gn "${bi[@]}" --set bilevel.cg.hvp=gauss_newton
run bidfcl_same "${bi[@]}" --set bilevel.upper_dtype=same
run bidfcl_explicit "${bi[@]}" --set bilevel.hypergradient=explicit
/usr/bin/python3 - "$OUT" "$EPOCHS" "$THREADS" <<'PY'
import json, sys, platform, os
out, epochs, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def epoch_s(name):
    r = json.load(open(f"{out}/{name}.json"))
    return r["samples"] / r["samples_per_s"] / epochs, r
base, _ = epoch_s("tsm_both")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
print(f"machine: {cpu}, {os.cpu_count()} cores, runtime.threads = {threads}; {epochs} epochs each\n")
print("| run | epoch (s) | x TSM-SL (both) | upper steps/epoch | mean CG products | lower | assumed | λ* | upper grad | CG | mixed |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
print(f"| TSM-SL, trial + log | {base:.2f} | 1.00 | | | | | | | | |")
for name, label in [("bidfcl_exact", "Bi-DFCL-PPL, exact HVP"), ("bidfcl_gn", "Bi-DFCL-PPL, Gauss-Newton HVP"),
                    ("bidfcl_same", "Bi-DFCL-PPL, exact, upper_dtype same (float32)"),
                    ("bidfcl_explicit", "Bi-DFCL-PPL w/o ID (explicit)")]:
    e, r = epoch_s(name)
    recs = [json.loads(l) for l in open(f"{out}/{name}/metrics.jsonl")]
    b = [x["bilevel"] for x in recs]
    steps = sum(x["upper_steps"] for x in b) / len(b)
    it = sum(x["mean_cg_iterations"] * x["upper_steps"] for x in b) / max(1, sum(x["upper_steps"] for x in b))
    sec = {k: sum(x["seconds"][k] for x in b) / len(b) for k in b[0]["seconds"]}
    print(f"| {label} | {e:.2f} | {e / base:.2f} | {steps:.0f} | {it:.1f} | {sec['lower']:.2f} | {sec['assumed_steps']:.2f} | "
          f"{sec['lambda']:.2f} | {sec['upper_gradient']:.2f} | {sec['cg']:.2f} | {sec['mixed_term']:.2f} |")
PY
