#!/usr/bin/env bash
# \brief The reproduction (docs/results.md): every method in every regime, tuned alike, 5 seeds, one script.
#
#   launch/experiments/reproduce.sh                                   # all regimes; about 2 h on 2 cores
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
#     spend on all the trial's rows (evaluate.budget_calibration: trial, calibration_split: all; only costs enter it),
#     then the decisions on the test rows are judged; regret and true spend come from the true tables.
# The lambda grid of pll, merl and ifd is the regime's lambda* at its three budgets under TSM-SL; ppl and pifd train
# at the three budgets themselves.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
[ -x build/src/cli/dfcl ] || bash launch/setup.sh
# A frozen copy of the binary: rebuilding while the reproduction runs cannot change it halfway.
out=${OUT:-out/experiments}
mkdir -p "$out"
if [ -z "${DFCL:-}" ]; then cp build/src/cli/dfcl "$out/dfcl"; dfcl=$(cd "$out" && pwd)/dfcl; else dfcl=$DFCL; fi
seeds=${SEEDS:-5}
regimes=${REGIMES:-"marketing retail marketing_small retail_small marketing_linear retail_linear marketing_heavy"}
methods=${METHODS:-"dhcl dfcl_pl dfcl_mer dfcl_ifd dfcl_ppl dfcl_pifd"}
cfg=configs/experiments

budgets_of() { case $1 in retail*) echo "[0.3,0.8,1.5]" ;; *) echo "[0.3,0.6,1.0]" ;; esac; }
lambdas_of() { case $1 in retail*) echo "[0.36,1.15,2.0]" ;; *) echo "[0.08,0.18,0.37]" ;; esac; }
data_of() {  # the linear regimes train on their family's file
  case $1 in marketing_linear) echo "$out/marketing.h5" ;; retail_linear) echo "$out/retail.h5" ;; *) echo "$out/$1.h5" ;; esac
}
# What a method adds on the command line in a regime: the lambda grid or the training budgets.
extra_of() {
  case $2 in
    dfcl_pl | dfcl_mer | dfcl_ifd) echo "--set loss.lambdas=$(lambdas_of "$1")" ;;
    dfcl_ppl | dfcl_pifd) echo "--set loss.budgets=$(budgets_of "$1")" ;;
  esac
}

start=$(date +%s)
say() { echo "[$(( $(date +%s) - start ))s] $*"; }
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
    e=$r/eval_$seed.json
    [ -f "$e" ] && continue
    scorers=""
    for variant in tsm_sl tsm_sl_eom $methods; do
      [ -f "$r/$variant/$seed/best.ckpt" ] && scorers+="${scorers:+,}$r/$variant/$seed/best.ckpt"
    done
    "$dfcl" -q evaluate --set "evaluate.data=$data" --set "evaluate.scores=[$scorers]" \
      --set "evaluate.budgets=$(budgets_of "$regime")" --set evaluate.budget_calibration=trial \
      --set evaluate.calibration_split=all --set evaluate.bootstrap=0 --set evaluate.plot= --json "$e.partial"
    mv "$e.partial" "$e"
  done
  say "$regime: evaluated"
done
# Every method selected with the true tables (is it the method or its selection?).
OUT=$out DFCL=$dfcl SEEDS=$seeds REGIMES="$regimes" METHODS="$methods" bash launch/experiments/oracle.sh
# What the decisions spend under each calibration (needs the retail regime).
[ -d "$out/retail/tsm_sl/1" ] && OUT=$out DFCL=$dfcl bash launch/experiments/spend.sh
/usr/bin/python3 launch/experiments/summarise.py "$out" "$seeds" $regimes > docs/results.md
say "wrote docs/results.md"
