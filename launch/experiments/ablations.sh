#!/usr/bin/env bash
# \brief Ablations behind docs/results.md's discussion: each config in configs/experiments/ablations/ fine-tunes the
# same seeds' TSM-SL models as reproduce.sh (run that first) and prints the paired regret difference against TSM-SL.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
dfcl=${DFCL:-$root/build/src/cli/dfcl}
out=${OUT:-out/experiments}
seeds=${SEEDS:-5}
for cfg in configs/experiments/ablations/*.yaml; do
  name=$(basename "$cfg" .yaml)
  case $name in synthetic_m5_*) bench=synthetic_m5 ;; synthetic_m2_*) bench=synthetic_m2 ;; esac
  for seed in $(seq 1 "$seeds"); do
    dir="$out/ablations/$name/$seed"
    [ -f "$dir/eval.json" ] && continue
    mkdir -p "$dir"
    "$dfcl" -q train -c "configs/experiments/$bench.base.yaml" -c "$cfg" --set "train.data=$out/$bench.h5" \
      --set "train.seed=$seed" --set "train.output=$dir" --set "train.init_from=$out/$bench/tsm_sl/$seed/best.ckpt" \
      --json "$dir/train.json"
    "$dfcl" -q evaluate --set "evaluate.data=$out/$bench.h5" --set "evaluate.scores=$dir/best.ckpt" \
      --set "evaluate.budgets=[0.3,0.6,1.0]" --set evaluate.bootstrap=0 --set evaluate.plot= --set evaluate.split=test \
      --json "$dir/eval.json"
  done
  /usr/bin/python3 - "$out" "$bench" "$name" "$seeds" <<'PY'
import json, math, statistics, sys
out, bench, name, seeds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def reg(path):
    e = json.load(open(path)); sc = e["scorers"][e["scores"]]
    return statistics.fmean(o["regret"] for o in sc["oracle"])
d = [reg(f"{out}/ablations/{name}/{s}/eval.json") - reg(f"{out}/{bench}/tsm_sl/{s}/eval.json") for s in range(1, seeds + 1)]
h = 2.776 * statistics.stdev(d) / math.sqrt(len(d)) if len(d) == 5 else float("nan")
print(f"{name}: regret - TSM-SL = {statistics.fmean(d):+.4f} ± {h:.4f} (better on {sum(x < 0 for x in d)}/{len(d)} seeds)")
PY
done
