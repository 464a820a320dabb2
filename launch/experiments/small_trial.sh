#!/usr/bin/env bash
# \brief The user dfcl is for, with the shipped defaults (docs/results.md, "A small trial and a large log, with the
# shipped configs"): per seed a fresh 10k-row trial and a 150k-row selection-biased log of the retail family (real-valued
# baskets, four coupon arms with redemption costs), and nothing tuned: configs/train.yaml (TSM-SL), configs/bidfcl.yaml
# (Bi-DFCL, its teacher trained first) and configs/cluster.yaml (the cluster policy on that TSM-SL's representation),
# with only the data, the output and the budgets given. Then every model is judged on 300k fresh users (dfcl evaluate,
# DR by default), and allocates them with lambda from the trial's 2k held-out rows, by the IPW and by the DR spend
# (dfcl allocate), against the true spend of those users.
#   launch/experiments/small_trial.sh              # SEEDS=5 OUT=out/small_trial; about 15 min on 2 cores
# Then launch/experiments/summarise_small_trial.py OUT SEEDS writes the section of docs/results.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=common.sh
source launch/experiments/common.sh
out=${OUT:-out/small_trial}
mkdir -p "$out"
if [ -z "${DFCL:-}" ]; then cp build/src/cli/dfcl "$out/dfcl"; dfcl=$(cd "$out" && pwd)/dfcl; else dfcl=$DFCL; fi
regime=$cfg/regimes/retail_trial_log.yaml
budgets="[0.3,0.8,1.5]"
users=$out/users.h5
[ -f "$users" ] || "$dfcl" -q generate -c "$regime" --set generate.rct_rows=300000 --set generate.observational_rows=0 \
  --set generate.first_row=50000000 --set generate.output="$users" > /dev/null
run() {  # json, then a dfcl command line; kept when the json exists
  local j=$1; shift
  [ -f "$j" ] && return 0
  "$dfcl" "$@" --json "$j.partial" > "${j%.json}.log" 2>&1 || { echo "failed: $* (see ${j%.json}.log)"; tail -3 "${j%.json}.log"; return 1; }
  mv "$j.partial" "$j"
}
for seed in $(seq 1 "$seeds"); do
  d=$out/$seed
  mkdir -p "$d"
  first=$(( seed * 1000000 ))
  [ -f "$d/trial.h5" ] || "$dfcl" -q generate -c "$regime" --set generate.rct_rows=10000 --set generate.observational_rows=0 \
    --set generate.first_row=$first --set generate.output="$d/trial.h5" > /dev/null
  [ -f "$d/log.h5" ] || "$dfcl" -q generate -c "$regime" --set generate.rct_rows=0 --set generate.observational_rows=150000 \
    --set generate.first_row=$(( first + 100000 )) --set generate.output="$d/log.h5" > /dev/null
  val=(--set "validation.budgets=$budgets" --set "train.seed=$seed")
  run "$d/tsm.json" train -c configs/train.yaml --set "train.data=$d/trial.h5" --set "train.output=$d/tsm" "${val[@]}"
  run "$d/bidfcl.json" train -c configs/bidfcl.yaml --set train.generate=false --set "train.data=[$d/trial.h5,$d/log.h5]" \
    --set "train.output=$d/bidfcl" "${val[@]}"
  run "$d/cluster.json" cluster -c configs/cluster.yaml --set "train.data=$d/trial.h5" --set "train.output=$d/cluster" \
    --set "cluster.representation=$d/tsm/best.ckpt" "${val[@]}"
  scorers="$d/tsm/best.ckpt,$d/bidfcl/best.ckpt,$d/cluster/cluster.policy"
  run "$d/evaluate.json" evaluate --set "evaluate.data=$users" --set "evaluate.scores=[$scorers]" \
    --set "evaluate.budgets=$budgets" --set evaluate.bootstrap=100 --set "evaluate.plot=$d/cost_curve.svg"
  for m in tsm bidfcl cluster; do
    s=$d/$m/best.ckpt
    [ "$m" = cluster ] && s=$d/cluster/cluster.policy
    for kind in ipw dr; do
      run "$d/allocate_${m}_$kind.json" allocate --set "allocate.scores=$s" --set "allocate.data=$users" \
        --set "allocate.calibration_data=$d/trial.h5" --set "allocate.budgets_per_capita=$budgets" \
        --set allocate.estimator.kind=$kind --set allocate.estimator.calibrate=$([ $kind = dr ] && echo true || echo false)
    done
  done
  say "small trial, seed $seed: done"
done
