#!/usr/bin/env bash
# \brief The reproduction (docs/results.md): every method in every regime, tuned alike, 5 seeds, one script.
#
#   launch/experiments/reproduce.sh                                   # all regimes; about 6 h on 2 cores
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
#  5. launch/experiments/select.sh selects every method by the DR estimate (RULE=dr_eom) and with the true tables
#     (RULE=regret: is it the method or its selection?) from the same tuning trials; with DEPLOY=1,
#     launch/experiments/deploy.sh allocates a 1M-user population with every model (the true spend of trial-calibrated
#     decisions) and launch/experiments/spend.sh compares predicted with trial calibration.
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
  generate_regime "$regime"
  data=$(data_of "$regime")
  layers=(-c "$cfg/base.yaml" -c "$cfg/regimes/$regime.yaml")
  r=$out/$regime
  mkdir -p "$r"
  for method in tsm_sl $methods; do
    applies "$regime" "$method" || continue
    # 2. Tuning (seed 100).
    t=$r/tune/$method
    if [ ! -f "$t/best.yaml" ]; then
      from=()
      [ "$method" = tsm_sl ] || read -r -a from <<< "$(start_of "$method" "$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["best"]["checkpoint"])' "$r/tune/tsm_sl/tune.json")")"
      # shellcheck disable=SC2046
      "$dfcl" -q tune "${layers[@]}" -c "$cfg/methods/$method.yaml" --set "train.data=$data" --set train.seed=100 \
        --set "tune.output=$t" --set tune.parallel=2 "${from[@]}" ${TUNE_TRIALS:+--set tune.trials=$TUNE_TRIALS} $(extra_of "$regime" "$method") --json "$t.json"
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
        # shellcheck disable=SC2046
        "$dfcl" -q train "${layers[@]}" -c "$cfg/methods/$method.yaml" -c "$t/best.yaml" "${sets[@]}" \
          $(start_of "$method" "$r/tsm_sl/$seed/best.ckpt") $(extra_of "$regime" "$method") \
          --json "$dir/train.json.partial"
        mv "$dir/train.json.partial" "$dir/train.json"
      done
      say "$regime: $variant, $seeds seeds"
    done
  done
  # 4. Evaluation: every method of a seed in one table.
  variants=(tsm_sl tsm_sl_eom)
  for method in $methods; do applies "$regime" "$method" && variants+=("$method"); done
  for seed in $(seq 1 "$seeds"); do
    evaluate_seed "$r" "$(eval_data_of "$regime")" "$regime" "$seed" "${variants[@]}"
  done
  say "$regime: evaluated"
  # 5. Every method selected by the DR estimate, and with the true tables (is it the method or its selection?).
  for rule in dr_eom regret; do
    RULE=$rule OUT=$out DFCL=$dfcl SEEDS=$seeds REGIMES="$regime" METHODS="$methods" bash launch/experiments/select.sh
  done
  /usr/bin/python3 launch/experiments/summarise.py "$out" "$seeds" $regimes > "$out/results.md" || true  # progress so far
done
# What every model's decisions spend in truth when deployed on a population of 1M users (DEPLOY=1: about an hour).
if [ "${DEPLOY:-0}" = 1 ]; then
  OUT=$out DFCL=$dfcl SEEDS=$seeds REGIMES="$regimes" METHODS="$methods" bash launch/experiments/deploy.sh
  [ -d "$out/retail/tsm_sl/1" ] && OUT=$out DFCL=$dfcl bash launch/experiments/spend.sh
fi
if [ "${WRITE_DOCS:-1}" = 1 ]; then
  /usr/bin/python3 launch/experiments/summarise.py "$out" "$seeds" $regimes > docs/results.md.new
  mv docs/results.md.new docs/results.md
  say "wrote docs/results.md"
fi
