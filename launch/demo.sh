#!/usr/bin/env bash
# \brief The main job on the embedded defaults: install what is missing, build, then
#   1. generate the default synthetic population (1M users: 200k RCT + 800k observational, 5 arms);
#   2. train TSM-SL (the two-stage baseline) on the trial's training split, validating every epoch;
#   3. evaluate the best model on the held-out RCT rows (test split) against random targeting and the oracle:
#      one table per budget with spend, IPW revenue, true revenue and regret, plus the cost-curve plot;
#   4. allocate every user at three per-capita budgets with the model.
# Extra arguments go to `dfcl train` (e.g. --set train.epochs=5).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/launch/setup.sh"
dfcl="$root/build/src/cli/dfcl"
cd "$root"
mkdir -p out
"$dfcl" generate -c configs/generate.yaml --set generate.output=out/synthetic.h5 --json out/summary.json
"$dfcl" train -c configs/train.yaml --json out/train.json "$@"
"$dfcl" evaluate -c configs/evaluate.yaml --json out/evaluation.json
"$dfcl" allocate -c configs/allocate.yaml --json out/allocation.json
cat <<MSG
demo: done. Plots:
  cost curves (test split):  $root/out/cost_curve.svg
  training curve:            $root/out/tsm_sl/training_curve.svg
Model: out/tsm_sl/best.ckpt (checkpoint), out/tsm_sl/model.pt (torch.load); per-epoch metrics: out/tsm_sl/metrics.jsonl
Allocation: out/allocation.csv; JSON results: out/train.json, out/evaluation.json, out/allocation.json
MSG
