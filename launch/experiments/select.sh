#!/usr/bin/env bash
# \brief The reproduction selected another way (docs/results.md): every method takes, from its own 8 tuning trials, the
# trial whose best epoch is best by RULE, and its seeds keep the epoch that is best by RULE (validation.metric = RULE);
# the DFCL losses fine-tune (and Bi-DFCL learns from) the TSM-SL model selected the same way. Test rows, calibration and
# evaluation as in reproduce.sh, which runs it (it reads reproduce.sh's tuning runs).
#   RULE=regret  the oracle selector: the validation regret from the true tables, which a real trial does not have
#                ("Selected with the true tables"; into <regime>/oracle)
#   RULE=dr_eom  the DR revenue at equal DR spend of the validation rows ("Selected by DR"; into <regime>/dr)
#   RULE=dr_eom REGIMES="retail" SEEDS=5 launch/experiments/select.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# shellcheck source=launch/experiments/common.sh
source launch/experiments/common.sh
dfcl=${DFCL:-$(cd "$out" && pwd)/dfcl}
rule=${RULE:?RULE=regret or RULE=dr_eom}
case $rule in regret) sub=oracle ;; dr_eom) sub=dr ;; *) echo "select.sh: RULE=$rule is not regret or dr_eom"; exit 2 ;; esac
for regime in $regimes; do
  r=$out/$regime
  [ -f "$r/tune/tsm_sl/tune.json" ] || { echo "select.sh: $regime has not been tuned (run reproduce.sh first)"; exit 1; }
  data=$(data_of "$regime")
  layers=(-c "$cfg/base.yaml" -c "$cfg/regimes/$regime.yaml")
  for method in tsm_sl $methods; do
    applies "$regime" "$method" || continue
    o=$r/$sub/$method
    mkdir -p "$o"
    # The trial whose best epoch is best by the rule, as a config layer.
    /usr/bin/python3 launch/experiments/select_trial.py "$rule" "$r/tune/$method" "$o/best.yaml"
    for seed in $(seq 1 "$seeds"); do
      dir=$o/$seed
      [ -f "$dir/train.json" ] && continue
      mkdir -p "$dir"
      sets=(--set "train.data=$data" --set "train.seed=$seed" --set "train.output=$dir" --set "validation.metric=$rule")
      # shellcheck disable=SC2046
      "$dfcl" -q train "${layers[@]}" -c "$cfg/methods/$method.yaml" -c "$o/best.yaml" "${sets[@]}" \
        $(start_of "$method" "$r/$sub/tsm_sl/$seed/best.ckpt") $(extra_of "$regime" "$method") \
        --json "$dir/train.json.partial"
      mv "$dir/train.json.partial" "$dir/train.json"
    done
    say "$regime: $rule-selected $method"
  done
  variants=()
  for method in tsm_sl $methods; do applies "$regime" "$method" && variants+=("$method"); done
  for seed in $(seq 1 "$seeds"); do
    evaluate_seed "$r/$sub" "$(eval_data_of "$regime")" "$regime" "$seed" "${variants[@]}"
  done
  say "$regime: $rule selection evaluated"
done
