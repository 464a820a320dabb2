#!/usr/bin/env bash
# \brief The main job on the embedded defaults: install what is missing, build, then
#   1. generate the default synthetic population (1M users: 200k RCT + 800k observational, 5 arms) and summarise it;
#   2. allocate at three per-capita budgets with the oracle's scores (the best any model could do);
#   3. evaluate the oracle against random targeting on held-out RCT rows (EOM with CIs, regret, cost-curve plot).
# Extra arguments go to `dfcl generate`. Training a model joins this pipeline with issue 4.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/launch/setup.sh"
dfcl="$root/build/src/cli/dfcl"
cd "$root"
mkdir -p out
"$dfcl" generate -c configs/generate.yaml --set generate.output=out/synthetic.h5 --json out/summary.json "$@"
"$dfcl" info out/synthetic.h5 --json out/info.json
"$dfcl" allocate -c configs/allocate.yaml --json out/allocation.json
"$dfcl" evaluate -c configs/evaluate.yaml --json out/evaluation.json
echo "demo: wrote out/synthetic.h5, out/allocation.csv, out/cost_curve.svg and JSON results in out/"
