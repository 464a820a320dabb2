#!/usr/bin/env bash
# \brief The reproduction with an oracle selector (docs/results.md, "Selected with the true tables"): is it the method or
# its selection? Every method takes, from its own 8 tuning trials, the one whose best epoch reached the lowest
# validation regret (the true tables of the validation rows, which a real trial does not have), and its seeds keep the
# epoch of lowest validation regret (validation.metric: regret); the DFCL losses fine-tune the TSM-SL model selected the
# same way. Test rows, calibration and evaluation as in reproduce.sh. Run after reproduce.sh (it reads its tuning runs).
#   REGIMES="retail" SEEDS=5 launch/experiments/oracle.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# shellcheck source=launch/experiments/common.sh
source launch/experiments/common.sh
dfcl=${DFCL:-$(cd "$out" && pwd)/dfcl}
for regime in $regimes; do
  r=$out/$regime
  [ -f "$r/tune/tsm_sl/tune.json" ] || { echo "oracle.sh: $regime has not been tuned (run reproduce.sh first)"; exit 1; }
  data=$(data_of "$regime")
  layers=(-c "$cfg/base.yaml" -c "$cfg/regimes/$regime.yaml")
  for method in tsm_sl $methods; do
    o=$r/oracle/$method
    mkdir -p "$o"
    # The trial whose best epoch reached the lowest validation regret, as a config layer.
    /usr/bin/python3 - "$r/tune/$method" "$o/best.yaml" <<'PY'
import json, os, sys
d, out = sys.argv[1], sys.argv[2]
trials = json.load(open(os.path.join(d, "tune.json")))["trials"]
best = None
for t in trials:
    p = os.path.join(t["dir"], "metrics.jsonl")
    if not os.path.exists(p):
        continue
    for line in open(p):
        rec = json.loads(line)
        v = rec.get("validation", {}).get("regret_mean")
        # An epoch whose decisions overspent a budget in truth (negative regret, from runs before such decisions
        # were charged the whole lift) is no candidate.
        if v is None or any(e.get("regret", 0) < -1e-6 for e in rec["validation"].get("eom", [])):
            continue
        if best is None or v < best[0]:
            best = (v, t)
lines = [f"# oracle selection: trial {best[1]['trial']} reached validation regret {best[0]:.6f}"]
sections = {}
for o in best[1]["overrides"]:
    k, v = o.split("=", 1)
    section, key = k.split(".", 1)
    sections.setdefault(section, []).append(f"  {key}: {v}")
for section, keys in sections.items():
    lines.append(f"{section}:")
    lines += keys
open(out, "w").write("\n".join(lines) + "\n")
PY
    for seed in $(seq 1 "$seeds"); do
      dir=$o/$seed
      [ -f "$dir/train.json" ] && continue
      mkdir -p "$dir"
      sets=(--set "train.data=$data" --set "train.seed=$seed" --set "train.output=$dir" --set validation.metric=regret)
      case $method in dfcl_*) sets+=(--set "train.init_from=$r/oracle/tsm_sl/$seed/best.ckpt") ;; esac
      # shellcheck disable=SC2046
      "$dfcl" -q train "${layers[@]}" -c "$cfg/methods/$method.yaml" -c "$o/best.yaml" "${sets[@]}" \
        $(extra_of "$regime" "$method") --json "$dir/train.json.partial"
      mv "$dir/train.json.partial" "$dir/train.json"
    done
    say "$regime: oracle-selected $method"
  done
  for seed in $(seq 1 "$seeds"); do
    # shellcheck disable=SC2086
    evaluate_seed "$r/oracle" "$data" "$regime" "$seed" tsm_sl $methods
  done
  say "$regime: oracle selection evaluated"
done
