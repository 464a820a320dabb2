#!/usr/bin/env bash
# \brief Budgets in true spend for every model of the reproduction (docs/results.md, "Deployed: the true spend of every
# model"): each seed's model of each method allocates 1M new users of its regime's population, with lambda calibrated
# by the IPW spend on a new 200k-row trial of the same population (allocate.budget_calibration: trial), and the true
# spend of the allocation is read off the population's true tables. Neither file shares a user with the regime's trial
# (generate.first_row), so no model saw them. The evaluation tables judge decisions on the 20k test rows, whose own
# true spend varies by a few percent from sample to sample; this is the deployment question: lambda from a trial,
# applied to everyone.
# Run after launch/experiments/reproduce.sh (it reads its checkpoints); writes out/experiments/<regime>/deploy/.
#   REGIMES="retail" SEEDS=5 launch/experiments/deploy.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# shellcheck source=launch/experiments/common.sh
source launch/experiments/common.sh
dfcl=${DFCL:-$(cd "$out" && pwd)/dfcl}
# The population: the regime's generator; the regime's trial is its rows 0 .. 200k-1, so the 1M users to allocate are
# rows 200k .. 1.2M-1 and the calibration trial rows 1.2M .. 1.4M-1 (rows are functions of (seed, row)).
population_of() {
  case $1 in marketing_linear | marketing_small) echo marketing ;; retail_linear | retail_small) echo retail ;; *) echo "$1" ;; esac
}
mkdir -p "$out/population"
jobs=()
for regime in $regimes; do
  p=$(population_of "$regime")
  pop=$out/population/$p.h5
  trial=$out/population/${p}_trial.h5
  [ -f "$pop" ] || "$dfcl" -q generate -c "$cfg/regimes/$p.yaml" --set generate.first_row=200000 \
    --set generate.rct_rows=1000000 --set generate.output="$pop" > /dev/null
  [ -f "$trial" ] || "$dfcl" -q generate -c "$cfg/regimes/$p.yaml" --set generate.first_row=1200000 \
    --set generate.rct_rows=200000 --set generate.output="$trial" > /dev/null
  d=$out/$regime/deploy
  mkdir -p "$d"
  for variant in tsm_sl tsm_sl_eom $methods; do
    for seed in $(seq 1 "$seeds"); do
      ckpt=$out/$regime/$variant/$seed/best.ckpt
      j=$d/${variant}_$seed.json
      [ -f "$ckpt" ] && [ ! -f "$j" ] && jobs+=("$ckpt $pop $trial $(budgets_of "$regime") $j")
    done
  done
done
# Two allocations at a time (each is mostly single-threaded reading and solving).
[ ${#jobs[@]} -eq 0 ] && { echo "deploy.sh: nothing left to allocate"; exit 0; }
printf '%s\n' "${jobs[@]}" | DFCL=$dfcl xargs -P 2 -L 1 bash -c '
  "$DFCL" -q allocate --set "allocate.scores=$0" --set "allocate.data=$1" --set "allocate.calibration_data=$2" \
    --set "allocate.budgets_per_capita=$3" --set allocate.budget_calibration=trial --set allocate.output= \
    --set allocate.curve= --json "$4.partial" > /dev/null && mv "$4.partial" "$4"' || {
  echo "deploy.sh: an allocation failed"
  exit 1
}
echo "deploy.sh: ${#jobs[@]} allocations"
