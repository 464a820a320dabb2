#!/usr/bin/env bash
# \brief The estimator study on dfcl's families and small-trial sizes (docs/results.md, "Judging decisions on a small
# trial"): bench/estimator_sims per (family, trial size), JSON into OUT (default out/estimator_sims), a table each.
#   bash bench/run_estimator_sims.sh            # marketing, retail, marketing with heavy noise; 5k, 10k and 20k rows
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${ESTIMATOR_SIMS:-$root/build/bench/estimator_sims}
out=${OUT:-$root/out/estimator_sims}
chunks=${CHUNKS:-60}
mkdir -p "$out"
for case in "marketing 0" "retail 0" "marketing 2"; do
  read -r family noise <<< "$case"
  for rows in ${ROWS:-5000 10000 20000}; do
    name=${family}_noise${noise}_${rows}
    [ -f "$out/$name.json" ] && continue
    "$bin" --family "$family" --revenue-noise "$noise" --trial-rows "$rows" --chunks "$chunks" --train-rows 20000 \
      --big 200000 --json "$out/$name.json.partial" 2>/dev/null | tee "$out/$name.txt"
    mv "$out/$name.json.partial" "$out/$name.json"
  done
done
