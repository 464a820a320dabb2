#!/usr/bin/env bash
# \brief What the reproduction's scripts share (sourced by reproduce.sh, oracle.sh, deploy.sh): the output folder, the
# frozen binary, the seeds, regimes and methods (each overridable from the environment), and per regime its budgets,
# its lambda grid, its data file and what a method adds on the command line there.
# shellcheck disable=SC2034  # the variables are read by the scripts that source this file
out=${OUT:-out/experiments}
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
# Evaluates the seed-`seed` models of the given variants under DIR (DIR/<variant>/<seed>/best.ckpt) together, into
# DIR/eval_<seed>.json: lambda from the IPW spend on the trial rows no model trained on (the held-out split), the
# decisions judged on the test rows. Kept when it exists.
#   evaluate_seed DIR DATA REGIME SEED VARIANT...
evaluate_seed() {
  local dir=$1 data=$2 regime=$3 seed=$4 scorers="" v
  shift 4
  local e=$dir/eval_$seed.json
  [ -f "$e" ] && return 0
  for v in "$@"; do
    [ -f "$dir/$v/$seed/best.ckpt" ] && scorers+="${scorers:+,}$dir/$v/$seed/best.ckpt"
  done
  "$dfcl" -q evaluate --set "evaluate.data=$data" --set "evaluate.scores=[$scorers]" \
    --set "evaluate.budgets=$(budgets_of "$regime")" --set evaluate.budget_calibration=trial \
    --set evaluate.calibration_split=held_out --set evaluate.bootstrap=0 --set evaluate.plot= --json "$e.partial"
  mv "$e.partial" "$e"
}
