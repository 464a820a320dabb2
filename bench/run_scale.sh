#!/usr/bin/env bash
# \brief The run at scale of issue 14, as a user runs it: generate 50M users x 32 features, train 2 MPI ranks for one
# epoch with a decision-focused loss, allocate all 50M users at 3 budgets, evaluate the test split; then one 100M-row
# streaming pass (an epoch of the loader over the file read twice). Records wall time, peak RSS of every process and
# disk per stage into OUT/scale.md (docs/benchmarks.md quotes it).
#
# Usage: bench/run_scale.sh [OUT_DIR (default out/scale)] [ROWS (default 50000000)]
# Needs ~12 GB of disk for 50M rows, and GNU time (/usr/bin/time).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$(mkdir -p "${1:-$root/out/scale}" && cd "${1:-$root/out/scale}" && pwd)
rows=${2:-50000000}
dfcl=${DFCL:-$root/build/src/cli/dfcl}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
[ -x /usr/bin/time ] || { echo "run_scale.sh: GNU time not found: apt-get install time"; exit 2; }
# One line per process: stage (DFCL_STAGE, which mpirun.sh passes on to the ranks), rank, wall s, peak RSS (KiB).
cat > "$out/timed.sh" <<SH
#!/usr/bin/env bash
exec /usr/bin/time -a -o "$out/times.tsv" -f "\${DFCL_STAGE:-dfcl}\t\${OMPI_COMM_WORLD_RANK:-0}\t%e\t%M" "$dfcl" "\$@"
SH
chmod +x "$out/timed.sh"
: > "$out/times.tsv"
disk() { du -sb "$@" 2>/dev/null | awk '{s += $1} END {printf "%.2f", s / 2^30}'; }
echo "stage	disk_gib" > "$out/disk.tsv"
h5=$out/users.h5
budgets="[0.1,0.3,0.6]"
common=(--set train.data="$h5" --set train.output="$out/run")

echo "== generate $rows users x 32 features"
DFCL_STAGE=generate "$out/timed.sh" -q generate --set generate.rct_rows=$((rows / 5)) \
  --set generate.observational_rows=$((rows - rows / 5)) --set generate.features=32 --set generate.output="$h5" \
  > "$out/generate.json"
echo "generate	$(disk "$h5")" >> "$out/disk.tsv"

echo "== train: 2 ranks, 1 epoch, loss ppl"
# The trial rows (source = 0) train, as the default train.source = rct says: rows/5 x 0.8 of them.
DFCL_STAGE=train DFCL="$out/timed.sh" bash "$root/launch/mpirun.sh" -n 2 -- -q train "${common[@]}" --set train.epochs=1 \
  --set loss.name=ppl --set loss.budgets=[0.3] --set validation.budgets=$budgets --json "$out/train.json"
echo "train	$(disk "$out/run")" >> "$out/disk.tsv"

echo "== allocate all $rows users at 3 budgets"
DFCL_STAGE=allocate "$out/timed.sh" -q allocate --set allocate.scores="$out/run/best.ckpt" --set allocate.data="$h5" \
  --set allocate.budgets_per_capita=$budgets --set allocate.output="$out/allocation.h5" --json "$out/allocate.json"
echo "allocate	$(disk "$out/allocation.h5")" >> "$out/disk.tsv"

echo "== evaluate the test split"
DFCL_STAGE=evaluate "$out/timed.sh" -q evaluate --set evaluate.scores="$out/run/best.ckpt" --set evaluate.data="$h5" \
  --set evaluate.split=test --set evaluate.budgets=$budgets --json "$out/evaluate.json"

echo "== a $((2 * rows))-row streaming pass: one loader epoch over the file read twice (1 rank, all rows)"
DFCL_STAGE=stream "$out/timed.sh" -q train --set train.data="[$h5,$h5]" --set train.source=all --set train.split_fractions=[1.0,0.0] \
  --set train.epochs=1 --set train.batch_size=65536 --set model.trunk=[8] --set validation.data="$h5" \
  --set validation.split=all --set validation.max_rows=100000 --set train.output="$out/stream" --json "$out/stream.json"

python3 - "$out" "$rows" <<'PY'
import sys, json, collections
out, rows = sys.argv[1], int(sys.argv[2])
t = collections.defaultdict(list)
for line in open(f"{out}/times.tsv"):
    stage, rank, wall, rss = line.split("\t")
    t[stage].append((int(rank), float(wall), int(rss) / 1024))
disk = dict(l.split("\t") for l in open(f"{out}/disk.tsv").read().split("\n")[1:] if l)
lines = ["| stage | wall s | peak RSS per process (MiB) | disk (GiB) |", "|---|---|---|---|"]
for stage in ["generate", "train", "allocate", "evaluate", "stream"]:
    if stage not in t: continue
    p = sorted(t[stage])
    lines.append(f"| {stage} | {max(w for _, w, _ in p):.0f} | {', '.join(f'rank {r}: {m:.0f}' if len(p) > 1 else f'{m:.0f}' for r, _, m in p)} | {disk.get(stage, '').strip()} |")
open(f"{out}/scale.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
