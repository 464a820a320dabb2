#!/usr/bin/env bash
# \brief Budgets in true spend (docs/results.md, "What the decisions spend"): the retail regime's seed-1 models
# allocate 2M new users at three budgets, with lambda from their own predicted costs or calibrated on trials of 20k, 200k
# and 2M rows, and the true spend of every allocation is read off the true tables. Besides TSM-SL and DFCL-IFD as tuned
# (cost_head: calibrated), DFCL-IFD with the papers' cost_head: decision, whose cost head flattens.
# Run after launch/experiments/reproduce.sh (it reads out/experiments/retail/); writes out/experiments/spend/*.json.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
out=${OUT:-out/experiments}
dfcl=${DFCL:-$(cd "$out" && pwd)/dfcl}
cfg=configs/experiments
s=$out/spend
mkdir -p "$s"
# The 2M users to allocate and trials of 20k, 200k and 2M rows, all new users of the retail population (rows are
# functions of (seed, row); the regime's trial, which the models trained on, is rows 0 .. 200k-1): users are rows
# 200k .. 2.2M-1, the trials rows from 2.2M on (the smaller trials are the first rows of the larger).
[ -f "$s/retail_users.h5" ] || "$dfcl" -q generate -c "$cfg/regimes/retail.yaml" --set generate.first_row=200000 \
  --set generate.rct_rows=2000000 --set generate.output="$s/retail_users.h5" > /dev/null
for n in 20000 200000 2000000; do
  [ -f "$s/retail_trial_$n.h5" ] || "$dfcl" -q generate -c "$cfg/regimes/retail.yaml" --set generate.first_row=2200000 \
    --set generate.rct_rows=$n --set generate.output="$s/retail_trial_$n.h5" > /dev/null
done
# DFCL-IFD with the papers' cost head: the tuned values, seed 1, cost_head: decision.
ifd_decision=$s/dfcl_ifd_decision
if [ ! -f "$ifd_decision/train.json" ]; then
  "$dfcl" -q train -c "$cfg/base.yaml" -c "$cfg/regimes/retail.yaml" -c "$cfg/methods/dfcl_ifd.yaml" \
    -c "$out/retail/tune/dfcl_ifd/best.yaml" --set "train.data=$out/retail.h5" --set train.seed=1 \
    --set "train.init_from=$out/retail/tsm_sl/1/best.ckpt" --set "train.output=$ifd_decision" \
    --set loss.cost_head=decision --set "loss.lambdas=[0.36,1.15,2.0]" --json "$ifd_decision/train.json.partial" \
    > /dev/null
  mv "$ifd_decision/train.json.partial" "$ifd_decision/train.json"
fi
for model in tsm_sl dfcl_ifd dfcl_ifd_decision; do
  ckpt=$out/retail/$model/1/best.ckpt
  [ "$model" = dfcl_ifd_decision ] && ckpt=$ifd_decision/best.ckpt
  [ -f "$s/${model}_predicted.json" ] || "$dfcl" -q allocate --set "allocate.scores=$ckpt" \
    --set "allocate.data=$s/retail_users.h5" --set "allocate.budgets_per_capita=[0.3,0.8,1.5]" \
    --set allocate.budget_calibration=predicted --json "$s/${model}_predicted.json"
  for n in 20000 200000 2000000; do
    [ -f "$s/${model}_trial_$n.json" ] || "$dfcl" -q allocate --set "allocate.scores=$ckpt" \
      --set "allocate.data=$s/retail_users.h5" --set "allocate.calibration_data=$s/retail_trial_$n.h5" \
      --set "allocate.budgets_per_capita=[0.3,0.8,1.5]" --set allocate.budget_calibration=trial \
      --json "$s/${model}_trial_$n.json"
  done
  echo "spend: $model done"
done
