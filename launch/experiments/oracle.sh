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
out=${OUT:-out/experiments}
dfcl=${DFCL:-$(cd "$out" && pwd)/dfcl}
seeds=${SEEDS:-5}
regimes=${REGIMES:-"marketing retail marketing_small retail_small marketing_linear retail_linear marketing_heavy"}
methods=${METHODS:-"dhcl dfcl_pl dfcl_mer dfcl_ifd dfcl_ppl dfcl_pifd"}
cfg=configs/experiments
# Shared with reproduce.sh: the regime's budgets, lambda grid and data file.
budgets_of() { case $1 in retail*) echo "[0.3,0.8,1.5]" ;; *) echo "[0.3,0.6,1.0]" ;; esac; }
lambdas_of() { case $1 in retail*) echo "[0.36,1.15,2.0]" ;; *) echo "[0.08,0.18,0.37]" ;; esac; }
data_of() {
  case $1 in marketing_linear) echo "$out/marketing.h5" ;; retail_linear) echo "$out/retail.h5" ;; *) echo "$out/$1.h5" ;; esac
}
extra_of() {
  case $2 in
    dfcl_pl | dfcl_mer | dfcl_ifd) echo "--set loss.lambdas=$(lambdas_of "$1")" ;;
    dfcl_ppl | dfcl_pifd) echo "--set loss.budgets=$(budgets_of "$1")" ;;
  esac
}
start=$(date +%s)
say() { echo "[$(( $(date +%s) - start ))s] $*"; }
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
    e=$r/oracle/eval_$seed.json
    [ -f "$e" ] && continue
    scorers=""
    for method in tsm_sl $methods; do
      [ -f "$r/oracle/$method/$seed/best.ckpt" ] && scorers+="${scorers:+,}$r/oracle/$method/$seed/best.ckpt"
    done
    "$dfcl" -q evaluate --set "evaluate.data=$data" --set "evaluate.scores=[$scorers]" \
      --set "evaluate.budgets=$(budgets_of "$regime")" --set evaluate.budget_calibration=trial \
      --set evaluate.calibration_split=all --set evaluate.bootstrap=0 --set evaluate.plot= --json "$e.partial"
    mv "$e.partial" "$e"
  done
  say "$regime: oracle selection evaluated"
done
