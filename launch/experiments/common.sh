#!/usr/bin/env bash
# \brief What the reproduction's scripts share (sourced by reproduce.sh, select.sh, deploy.sh): the output folder, the
# frozen binary, the seeds, regimes and methods (each overridable from the environment), and per regime its budgets,
# its lambda grid, its data file and what a method adds on the command line there.
# shellcheck disable=SC2034  # the variables are read by the scripts that source this file
out=${OUT:-out/experiments}
seeds=${SEEDS:-5}
regimes=${REGIMES:-"marketing retail marketing_small retail_small marketing_linear retail_linear marketing_heavy marketing_m2 retail_trial_log"}
methods=${METHODS:-"dhcl drp dfcl_pl dfcl_mer dfcl_ifd dfcl_ppl dfcl_pifd tsm_sl_both bidfcl_ppl"}
cfg=configs/experiments

budgets_of() { case $1 in retail*) echo "[0.3,0.8,1.5]" ;; *) echo "[0.3,0.6,1.0]" ;; esac; }
middle_budget_of() { case $1 in retail*) echo "[0.8]" ;; *) echo "[0.6]" ;; esac; }
lambdas_of() { case $1 in retail*) echo "[0.36,1.15,2.0]" ;; *_m2) echo "[0.43,0.23,0.074]" ;; *) echo "[0.08,0.18,0.37]" ;; esac; }
# A regime with a log trains on a small trial file and a log file and is judged on a third file of fresh trial users.
has_log() { case $1 in *_log) return 0 ;; *) return 1 ;; esac; }
data_of() {  # what train.data is; the linear regimes train on their family's file
  case $1 in
    marketing_linear) echo "$out/marketing.h5" ;; retail_linear) echo "$out/retail.h5" ;;
    *_log) echo "[$out/$1_trial.h5,$out/$1_log.h5]" ;; *) echo "$out/$1.h5" ;;
  esac
}
eval_data_of() { if has_log "$1"; then echo "$out/$1_test.h5"; else data_of "$1"; fi; }
# Generates a regime's files (kept when they exist): one file, or the trial, the log and the test trial (fresh users).
generate_regime() {
  local regime=$1 c=$cfg/regimes/$1.yaml
  if has_log "$regime"; then
    [ -f "$out/${regime}_trial.h5" ] || "$dfcl" -q generate -c "$c" --set generate.observational_rows=0 \
      --set generate.output="$out/${regime}_trial.h5" > /dev/null
    [ -f "$out/${regime}_log.h5" ] || "$dfcl" -q generate -c "$c" --set generate.rct_rows=0 \
      --set generate.first_row=10000000 --set generate.output="$out/${regime}_log.h5" > /dev/null
    [ -f "$out/${regime}_test.h5" ] || "$dfcl" -q generate -c "$c" --set generate.rct_rows=100000 \
      --set generate.observational_rows=0 --set generate.first_row=20000000 --set generate.output="$out/${regime}_test.h5" > /dev/null
  else
    local d
    d=$(data_of "$regime")
    [ -f "$d" ] || "$dfcl" -q generate -c "$c" --set generate.output="$d" > /dev/null
  fi
}
# Whether a method runs in a regime: DRP is binary only; TSM-SL on trial + log and Bi-DFCL need a log.
applies() {
  case $2 in
    drp) case $1 in *_m2) return 0 ;; *) return 1 ;; esac ;;
    tsm_sl_both | bidfcl_ppl) has_log "$1" ;;
    *) return 0 ;;
  esac
}
# The methods that fine-tune (or, for Bi-DFCL, learn from) the seed's TSM-SL model: what they add, given its checkpoint.
start_of() {
  case $1 in dfcl_*) echo "--set train.init_from=$2" ;; bidfcl_*) echo "--set bilevel.teacher=$2" ;; esac
}
# What a method adds on the command line in a regime: the lambda grid or the training budgets.
extra_of() {
  case $2 in
    dfcl_pl | dfcl_mer | dfcl_ifd) echo "--set loss.lambdas=$(lambdas_of "$1")" ;;
    dfcl_ppl | dfcl_pifd) echo "--set loss.budgets=$(budgets_of "$1")" ;;
    bidfcl_ppl) echo "--set loss.budgets=$(middle_budget_of "$1")" ;;
  esac
}
start=$(date +%s)
say() { echo "[$(( $(date +%s) - start ))s] $*"; }
# Evaluates the seed-`seed` models of the given variants under DIR (DIR/<variant>/<seed>/best.ckpt) together, into
# DIR/eval_<seed>.json: lambda from the IPW spend on the trial rows no model trained on (the held-out split), the
# decisions judged on the test rows (the papers' protocol, estimator ipw; regret does not depend on lambda). Then
# DIR/eval_dr_<seed>.json: the same decisions' lambda by the DR spend (what the true-spend comparison reads). Kept when
# they exist.
#   evaluate_seed DIR DATA REGIME SEED VARIANT...
evaluate_seed() {
  local dir=$1 data=$2 regime=$3 seed=$4 scorers="" v
  shift 4
  for v in "$@"; do
    [ -f "$dir/$v/$seed/best.ckpt" ] && scorers+="${scorers:+,}$dir/$v/$seed/best.ckpt"
  done
  local kind json cal=held_out
  has_log "$regime" && cal=all  # the test file is fresh users no model saw: all of it
  for kind in ipw dr; do
    json=$dir/eval_$seed.json
    [ "$kind" = dr ] && json=$dir/eval_dr_$seed.json
    [ -f "$json" ] && continue
    "$dfcl" -q evaluate --set "evaluate.data=$data" --set "evaluate.scores=[$scorers]" \
      --set "evaluate.budgets=$(budgets_of "$regime")" --set evaluate.budget_calibration=trial \
      --set evaluate.calibration_split="$cal" --set evaluate.bootstrap=0 --set evaluate.plot= \
      --set evaluate.estimator.kind="$kind" --json "$json.partial"
    mv "$json.partial" "$json"
  done
}
