#!/usr/bin/env bash
# \brief The Bi-DFCL study (docs/results.md, "Bi-DFCL"): a small trial and a large selection-biased log, M = 5 and
# M = 2 arms (and, BI_REGIMES=bidfcl_m5_confounded, M = 5 with a hidden confounder in the log), SEEDS seeds (data and training seed together). Per seed: TSM-SL on the trial, on the log and on both;
# DFCL-PPL and DFCL-PIFD on the trial (fine-tuning the seed's trial TSM-SL, as in the main study); Bi-DFCL-PPL and
# Bi-DFCL-PIFD (teacher = the seed's trial TSM-SL); the ablations w/o ID (explicit), Gauss-Newton HVP, no
# counterfactual labels. Every model of a seed is evaluated together on the test rows (true tables: oracle regret).
#   launch/experiments/bidfcl.sh                   # OUT=out/experiments SEEDS=5 TRIAL=30000 LOG=500000
# Then: launch/experiments/summarise_bidfcl.py OUT SEEDS writes the section of docs/results.md. BI_ABLATIONS=0 leaves
# out the three ablations (w/o ID, Gauss-Newton HVP, no counterfactual labels).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=common.sh
source launch/experiments/common.sh
trial=${TRIAL:-30000}
log=${LOG:-500000}
bi_regimes=${BI_REGIMES:-"bidfcl_m5 bidfcl_m2"}
threads=${THREADS:-$(nproc)}
mkdir -p "$out"
if [ -z "${DFCL:-}" ]; then cp build/src/cli/dfcl "$out/dfcl_bidfcl"; dfcl=$(cd "$out" && pwd)/dfcl_bidfcl; else dfcl=$DFCL; fi
budget=0.6  # the per-capita training budget of the primal losses (the middle evaluation budget)

# bidfcl_m5_confounded: the log also selects on a shock no feature carries (docs/data.md, logging_confounding)
arms_of() { case $1 in bidfcl_m2) echo "--set generate.arms=2 --set generate.arm_values=[0,4] --set generate.rct_propensity=[0.5,0.5]" ;;
                        bidfcl_m5_confounded) echo "--set generate.arms=5 --set generate.logging_confounding=2" ;;
                        *) echo "--set generate.arms=5" ;; esac; }
# Every run also keeps its best epoch by the DR estimate (validation.keep_best: best_dr_eom.ckpt), evaluated as the
# variant <model>_dr (a link): the same training, selected by DR instead of its own metric.
train() {  # dir name, then dfcl train arguments; kept when its best.ckpt exists
  local d=$1; shift
  if [ ! -f "$d/best.ckpt" ]; then
    "$dfcl" -q train "$@" --set validation.keep_best=[dr_eom] --set train.output="$d" \
      --set runtime.threads="$threads" --json "$d.json" > "$d.log" 2>&1 \
      || { echo "failed: $d (see $d.log)"; tail -3 "$d.log"; return 1; }
  fi
  local model seed
  model=$(basename "$(dirname "$d")") seed=$(basename "$d")
  mkdir -p "$(dirname "$(dirname "$d")")/${model}_dr/$seed"
  ln -sf "$(cd "$d" && pwd)/best_dr_eom.ckpt" "$(dirname "$(dirname "$d")")/${model}_dr/$seed/best.ckpt"
}

for regime in $bi_regimes; do
  for seed in $(seq 1 "$seeds"); do
    r=$out/$regime
    mkdir -p "$r"
    data=$r/data_$seed.h5
    if [ ! -f "$data" ]; then
      # shellcheck disable=SC2046
      "$dfcl" -q generate --set generate.family=marketing --set generate.rct_rows="$trial" \
        --set generate.observational_rows="$log" $(arms_of "$regime") --set generate.seed="$seed" \
        --set generate.output="$data" > /dev/null
    fi
    base=(--set train.data="$data" --set train.seed="$seed")
    say "$regime seed $seed: TSM-SL"
    mkdir -p "$r"/{tsm_trial,tsm_log,tsm_both,dfcl_ppl,dfcl_pifd,bidfcl_ppl,bidfcl_pifd,bidfcl_wo_id,bidfcl_gn,bidfcl_nocf}
    train "$r/tsm_trial/$seed" -c configs/train.yaml "${base[@]}" --set train.source=rct --set train.epochs=10
    train "$r/tsm_log/$seed" -c configs/train.yaml "${base[@]}" --set train.source=observational --set train.epochs=4
    train "$r/tsm_both/$seed" -c configs/train.yaml "${base[@]}" --set train.source=all --set train.epochs=4
    say "$regime seed $seed: DFCL on the trial"
    for l in ppl pifd; do
      train "$r/dfcl_$l/$seed" -c configs/train.yaml "${base[@]}" --set train.source=rct --set train.epochs=5 \
        --set "loss={name: $l, budgets: [$budget], tau: 0.1}" --set validation.metric=eom \
        --set train.init_from="$r/tsm_trial/$seed/best.ckpt" --set optimizer.lr=0.001
    done
    bi=(-c configs/bidfcl.yaml "${base[@]}" --set train.generate=false --set bilevel.teacher="$r/tsm_trial/$seed/best.ckpt")
    say "$regime seed $seed: Bi-DFCL"
    train "$r/bidfcl_ppl/$seed" "${bi[@]}"
    train "$r/bidfcl_pifd/$seed" "${bi[@]}" --set "loss={name: pifd, budgets: [$budget], lambda_source: sample, alpha: 0}"
    if [ "${BI_ABLATIONS:-1}" = 1 ]; then
      train "$r/bidfcl_wo_id/$seed" "${bi[@]}" --set bilevel.hypergradient=explicit
      train "$r/bidfcl_gn/$seed" "${bi[@]}" --set bilevel.cg.hvp=gauss_newton
      train "$r/bidfcl_nocf/$seed" "${bi[@]}" --set bilevel.labels=factual_weights
    fi
    evaluate_seed "$r" "$data" "$regime" "$seed" tsm_trial tsm_log tsm_both dfcl_ppl dfcl_pifd bidfcl_ppl bidfcl_pifd \
      bidfcl_wo_id bidfcl_gn bidfcl_nocf tsm_trial_dr tsm_log_dr tsm_both_dr dfcl_ppl_dr dfcl_pifd_dr bidfcl_ppl_dr \
      bidfcl_pifd_dr
  done
done
say "done"
