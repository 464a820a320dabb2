#!/usr/bin/env bash
# \brief The reproduction (docs/results.md): every method in every regime, tuned alike, 5 seeds, one script.
#
#   launch/experiments/reproduce.sh                                   # all regimes; about 2.5 h on 2 cores
#   REGIMES="marketing_small retail_small" SEEDS=2 launch/experiments/reproduce.sh   # a quick look
#   METHODS="dfcl_ifd" launch/experiments/reproduce.sh                # some methods (TSM-SL always runs: the others
#                                                                      # fine-tune it and are compared with it)
# Work already done is kept (a tuning with best.yaml, a run with train.json, an evaluation with its JSON), so an
# interrupted reproduction continues where it stopped; delete out/experiments/<regime>/... to redo a part.
#
# Protocol, per regime (configs/experiments/base.yaml + regimes/<regime>.yaml + methods/<method>.yaml):
#  1. the regime's trial is generated once (its `generate` section);
#  2. equal tuning: every method gets the same budget, `dfcl tune` with 8 random trials over the learning rate, the
#     epochs and its own keys (alpha, tau, h), on tuning seed 100; trials and epochs are selected on validation EOM at
#     equal (IPW) spend for the decision losses and on the validation loss for TSM-SL, a prediction model; the DFCL
#     losses fine-tune the tuned TSM-SL model of that seed (the DFCL paper's protocol);
#  3. seeds 1..5 train each method with its tuned values (the DFCL losses fine-tune that seed's TSM-SL); TSM-SL is also
#     trained selected on validation EOM like the decision losses ("TSM-SL, EOM-selected");
#  4. per seed, all methods are evaluated together on the test split's trial rows: lambda is calibrated by the IPW
#     spend on the trial rows no model trained on (evaluate.budget_calibration: trial, calibration_split: held_out,
#     the validation and test splits: on its own training rows a model's decisions follow the outcomes it fit, and
#     their IPW spend is biased), then the decisions on the test rows are judged; regret and true spend come from the true tables;
#  5. launch/experiments/oracle.sh selects every method with the true tables instead (is it the method or its
#     selection?), launch/experiments/deploy.sh allocates a 1M-user population with every model (the true spend of
#     trial-calibrated decisions) and launch/experiments/spend.sh compares predicted with trial calibration.
# The lambda grid of pll, merl and ifd is the regime's lambda* at its three budgets under TSM-SL; ppl and pifd train
# at the three budgets themselves.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
[ -x build/src/cli/dfcl ] || bash launch/setup.sh
# shellcheck source=launch/experiments/common.sh
source launch/experiments/common.sh
# A frozen copy of the binary: rebuilding while the reproduction runs cannot change it halfway.
mkdir -p "$out"
if [ -z "${DFCL:-}" ]; then cp build/src/cli/dfcl "$out/dfcl"; dfcl=$(cd "$out" && pwd)/dfcl; else dfcl=$DFCL; fi
for regime in $regimes; do
  data=$(data_of "$regime")
  [ -f "$data" ] || "$dfcl" -q generate -c "$cfg/regimes/$regime.yaml" --set generate.output="$data" > /dev/null
  layers=(-c "$cfg/base.yaml" -c "$cfg/regimes/$regime.yaml")
  r=$out/$regime
  mkdir -p "$r"
  for method in tsm_sl $methods; do
    # 2. Tuning (seed 100).
    t=$r/tune/$method
    if [ ! -f "$t/best.yaml" ]; then
      init=()
      case $method in dfcl_*)
        init=(--set "train.init_from=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["best"]["checkpoint"])' "$r/tune/tsm_sl/tune.json")") ;;
      esac
      # shellcheck disable=SC2046
      "$dfcl" -q tune "${layers[@]}" -c "$cfg/methods/$method.yaml" --set "train.data=$data" --set train.seed=100 \
        --set "tune.output=$t" --set tune.parallel=2 "${init[@]}" $(extra_of "$regime" "$method") --json "$t.json"
      mv "$t.json" "$t/tune.json"
      say "$regime: tuned $method"
    fi
    # 3. Seeds.
    variants=("$method")
    [ "$method" = tsm_sl ] && variants+=(tsm_sl_eom)
    for variant in "${variants[@]}"; do
      for seed in $(seq 1 "$seeds"); do
        dir=$r/$variant/$seed
        [ -f "$dir/train.json" ] && continue
        mkdir -p "$dir"
        sets=(--set "train.data=$data" --set "train.seed=$seed" --set "train.output=$dir")
        [ "$variant" = tsm_sl_eom ] && sets+=(--set validation.metric=eom)
        case $method in dfcl_*) sets+=(--set "train.init_from=$r/tsm_sl/$seed/best.ckpt") ;; esac
        # shellcheck disable=SC2046
        "$dfcl" -q train "${layers[@]}" -c "$cfg/methods/$method.yaml" -c "$t/best.yaml" "${sets[@]}" \
          $(extra_of "$regime" "$method") --json "$dir/train.json.partial"
        mv "$dir/train.json.partial" "$dir/train.json"
      done
      say "$regime: $variant, $seeds seeds"
    done
  done
  # 4. Evaluation: every method of a seed in one table.
  for seed in $(seq 1 "$seeds"); do
    # shellcheck disable=SC2086
    evaluate_seed "$r" "$data" "$regime" "$seed" tsm_sl tsm_sl_eom $methods
  done
  say "$regime: evaluated"
done
# Every method selected with the true tables (is it the method or its selection?).
OUT=$out DFCL=$dfcl SEEDS=$seeds REGIMES="$regimes" METHODS="$methods" bash launch/experiments/oracle.sh
# What every model's decisions spend in truth when deployed on a population of 1M users.
OUT=$out DFCL=$dfcl SEEDS=$seeds REGIMES="$regimes" METHODS="$methods" bash launch/experiments/deploy.sh
# What the decisions spend under each calibration (needs the retail regime).
[ -d "$out/retail/tsm_sl/1" ] && OUT=$out DFCL=$dfcl bash launch/experiments/spend.sh
/usr/bin/python3 launch/experiments/summarise.py "$out" "$seeds" $regimes > docs/results.md
say "wrote docs/results.md"
