#!/usr/bin/env bash
# \brief The reproduction table (docs/results.md): every method on the same data, several seeds, one script.
#
#   launch/experiments/reproduce.sh            # 5 seeds, all benchmarks; about 40 min on 2 cores
#   SEEDS=2 BENCHES=hillstrom_m2 launch/experiments/reproduce.sh   # a quick look
#   METHODS="dfcl_pl dfcl_ifd" launch/experiments/reproduce.sh       # some methods only (TSM-SL always runs first)
#   NO_BASELINE=1 METHODS="dhcl drp" launch/experiments/reproduce.sh # from-scratch methods, next to a running job
# A run whose eval.json exists is kept (delete out/experiments/<bench>/<method> to redo it), so an interrupted
# reproduction continues where it stopped.
#
# Benchmarks (configs/experiments/<bench>.base.yaml + one file per method in configs/experiments/<bench>/):
#   synthetic_m5  the default synthetic population (1M users, 200k RCT), M = 5: EOM at 3 budgets, regret, true revenue
#   synthetic_m2  the same generator with two arms, M = 2: AUCC (Q = 200) and regret
#   hillstrom_m2  Hillstrom {No E-Mail, Mens E-Mail}, revenue = conversion, cost = visit: AUCC (Q = 200)
# Per seed: TSM-SL is trained first (10 epochs, selected by validation loss); DHCL and DRP are trained from scratch;
# the DFCL variants fine-tune the seed's TSM-SL model for 5 epochs (the DFCL paper's Criteo protocol), selected by
# validation EOM (M = 5) or AUCC (M = 2). Every model is then evaluated on the held-out test split's RCT rows.
# Results: out/experiments/<bench>/<method>/<seed>/{train,eval}.json; the table: docs/results.md.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
[ -x build/src/cli/dfcl ] || bash launch/setup.sh
dfcl=${DFCL:-$root/build/src/cli/dfcl}  # DFCL=path runs another binary (e.g. a copy while rebuilding)
out=${OUT:-out/experiments}
seeds=${SEEDS:-5}
benches=${BENCHES:-"synthetic_m5 synthetic_m2 hillstrom_m2"}
mkdir -p "$out"

data_of() { echo "$out/$1.h5"; }
[ -f "$out/synthetic_m5.h5" ] || "$dfcl" -q generate -c configs/generate.yaml --set generate.output="$out/synthetic_m5.h5" >/dev/null
[ -f "$out/synthetic_m2.h5" ] || "$dfcl" -q generate -c configs/generate.yaml --set generate.arms=2 \
  --set generate.arm_values=[0,1] --set generate.rct_propensity=[0.5,0.5] --set generate.output="$out/synthetic_m2.h5" >/dev/null
[ -f "$out/hillstrom_m2.h5" ] || "$dfcl" -q import -c configs/experiments/import_hillstrom_binary.yaml \
  --set import.output="$out/hillstrom_m2.h5" >/dev/null

budgets_of() {
  case $1 in
    synthetic_m5) echo "[0.3,0.6,1.0]" ;;
    synthetic_m2) echo "[0.1,0.2,0.3]" ;;
    hillstrom_m2) echo "[0.12,0.14,0.16]" ;;
  esac
}

split_of() { case $1 in hillstrom_m2) echo "[0.6,0.1]" ;; *) echo "[0.8,0.1]" ;; esac; }

start=$(date +%s)
for bench in $benches; do
  data=$(data_of "$bench")
  methods=${METHODS:-$(ls configs/experiments/$bench/*.yaml | xargs -n1 basename | sed 's/\.yaml$//' | grep -v '^tsm_sl$')}
  for seed in $(seq 1 "$seeds"); do
    baseline=tsm_sl
    [ -n "${NO_BASELINE:-}" ] && baseline=""  # methods that do not start from TSM-SL (DHCL, DRP) can run alongside
    for method in $baseline $methods; do
      [ -f "configs/experiments/$bench/$method.yaml" ] || continue  # e.g. DRP is binary only
      dir="$out/$bench/$method/$seed"
      [ -f "$dir/eval.json" ] && continue
      mkdir -p "$dir"
      init=()
      case $method in dfcl_*) init=(--set "train.init_from=$out/$bench/tsm_sl/$seed/best.ckpt") ;; esac
      t0=$(date +%s)
      "$dfcl" -q train -c "configs/experiments/$bench.base.yaml" -c "configs/experiments/$bench/$method.yaml" \
        --set "train.data=$data" --set "train.seed=$seed" --set "train.output=$dir" "${init[@]}" --json "$dir/train.json"
      "$dfcl" -q evaluate --set "evaluate.data=$data" --set "evaluate.scores=$dir/best.ckpt" \
        --set "evaluate.budgets=$(budgets_of "$bench")" --set evaluate.bootstrap=0 --set evaluate.plot= \
        --set evaluate.split=test --set "evaluate.split_fractions=$(split_of "$bench")" --json "$dir/eval.json"
      echo "$bench seed $seed $method: $(( $(date +%s) - t0 ))s (total $(( $(date +%s) - start ))s)"
    done
  done
done
/usr/bin/python3 launch/experiments/summarise.py "$out" "$seeds" > docs/results.md
echo "wrote docs/results.md ($(( $(date +%s) - start ))s)"
