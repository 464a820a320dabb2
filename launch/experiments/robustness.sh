#!/usr/bin/env bash
# \brief The cluster-allocation robustness study (docs/results.md, "Cluster allocation under label noise"; issue 17).
#
#   launch/experiments/robustness.sh                    # NOISES="0 0.1 0.3" SEEDS=5, plus Hillstrom; ~30 min on 2 cores
#   NOISES=0.3 SEEDS=2 HILLSTROM=0 launch/experiments/robustness.sh   # a quick look
#
# Per noise level (configs/experiments/regimes/marketing_noisy.yaml + generate.label_noise):
#  1. equal tuning, as in the main reproduction: TSM-SL and DFCL-IFD each get `dfcl tune`, 8 random trials, on a
#     tuning data seed (100); TSM-SL is selected on its validation loss, DFCL-IFD on validation EOM (fine-tuning the tuned
#     TSM-SL); the cluster policy's one choice, K in {10, 20, 50, 100, 200, 500}, is selected on validation EOM (IPW) by
#     dfcl cluster itself, and again on the validation DR EOM (cluster.metric: dr_eom, "Cluster, K by DR");
#  2. seeds 1..SEEDS, each its own data seed and training seed: TSM-SL, DFCL-IFD (fine-tuning that TSM-SL), the cluster
#     policy on that TSM-SL's representation (served by the distilled classifier, as deployed; and the same fit served
#     by the teacher, to show what distillation costs), and the K = 1 floor (one arm for everyone at each budget);
#  3. per seed every scorer is evaluated together on the test split's trial rows: lambda calibrated by the IPW spend on
#     the held-out trial rows, oracle regret from the true tables (which label noise never touches).
# Hillstrom (HILLSTROM=1): the same four on the real 3-arm e-mail trial, 5 seeds of training; EOM and the cost curve.
# Then launch/experiments/summarise_robustness.py OUT SEEDS writes the section of docs/results.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=common.sh
source launch/experiments/common.sh
out=${OUT:-out/robustness}
noises=${NOISES:-"0 0.1 0.3"}
ks=${KS:-"[10,20,50,100,200,500]"}
mkdir -p "$out"
if [ -z "${DFCL:-}" ]; then cp build/src/cli/dfcl "$out/dfcl"; dfcl=$(cd "$out" && pwd)/dfcl; else dfcl=$DFCL; fi
layers=(-c "$cfg/base.yaml" -c "$cfg/regimes/marketing_noisy.yaml")
lambdas=$(lambdas_of marketing)

run() {  # log file, then a dfcl command line; kept when the log ends in "ok"
  local log=$1; shift
  [ -f "$log" ] && tail -1 "$log" | grep -qx ok && return 0
  "$dfcl" -q "$@" > "$log" 2>&1 || { echo "failed: $* (see $log)"; tail -3 "$log"; return 1; }
  echo ok >> "$log"
}
generate() {  # noise seed -> data file
  local f=$out/noise_$1/data_$2.h5
  [ -f "$f" ] || "$dfcl" -q generate -c "$cfg/regimes/marketing_noisy.yaml" --set generate.label_noise="$1" \
    --set generate.seed="$2" --set generate.output="$f" > /dev/null
  echo "$f"
}
# The scorers of one seed: TSM-SL, DFCL-IFD, the cluster policy (student- and teacher-served), the K = 1 floor.
fit_seed() {  # dir data seed tsm_best dfcl_best
  local d=$1 data=$2 seed=$3 tsm_tuned=$4 dfcl_tuned=$5
  mkdir -p "$d"
  local base=(--set "train.data=$data" --set "train.seed=$seed")
  run "$d/tsm_sl.log" train "${layers[@]}" -c "$cfg/methods/tsm_sl.yaml" -c "$tsm_tuned" "${base[@]}" \
    --set "train.output=$d/tsm_sl" --json "$d/tsm_sl.json"
  run "$d/dfcl_ifd.log" train "${layers[@]}" -c "$cfg/methods/dfcl_ifd.yaml" -c "$dfcl_tuned" "${base[@]}" \
    --set "loss.lambdas=$lambdas" --set "train.init_from=$d/tsm_sl/best.ckpt" --set "train.output=$d/dfcl_ifd" \
    --json "$d/dfcl_ifd.json"
  local rep=(--set "cluster.representation=$d/tsm_sl/best.ckpt" --set validation.metric=eom)
  run "$d/cluster.log" cluster "${layers[@]}" "${base[@]}" "${rep[@]}" --set "cluster.k=$ks" --set cluster.metric=eom \
    --set "train.output=$d/cluster" --set "cluster.output=$d/cluster.policy" --json "$d/cluster.json"
  # K chosen on the DR estimate instead (cluster.metric: dr_eom, the default of dfcl cluster).
  run "$d/cluster_dr.log" cluster "${layers[@]}" "${base[@]}" "${rep[@]}" --set "cluster.k=$ks" --set cluster.metric=dr_eom \
    --set "train.output=$d/cluster_dr" --set "cluster.output=$d/cluster_dr.policy" --json "$d/cluster_dr.json"
  # The same fit served by the teacher (representation net + nearest centroid): what distillation costs.
  run "$d/cluster_teacher.log" cluster "${layers[@]}" "${base[@]}" "${rep[@]}" --set "cluster.k=$ks" --set cluster.metric=eom \
    --set cluster.serve=teacher --set cluster.distill.epochs=0 --set "train.output=$d/cluster_teacher" \
    --set "cluster.output=$d/cluster_teacher.policy" --json "$d/cluster_teacher.json"
  run "$d/k1.log" cluster "${layers[@]}" "${base[@]}" "${rep[@]}" --set "cluster.k=[1]" --set cluster.serve=teacher \
    --set cluster.distill.epochs=0 --set "train.output=$d/k1" --set "cluster.output=$d/k1.policy" --json "$d/k1.json"
}
evaluate() {  # dir data budgets [plot]
  local d=$1 data=$2 budgets=$3 plot=${4:-}
  [ -f "$d/eval.json" ] && return 0
  "$dfcl" -q evaluate --set "evaluate.data=$data" \
    --set "evaluate.scores=[$d/tsm_sl/best.ckpt,$d/dfcl_ifd/best.ckpt,$d/cluster.policy,$d/cluster_teacher.policy,$d/k1.policy,$d/cluster_dr.policy]" \
    --set "evaluate.budgets=$budgets" --set evaluate.budget_calibration=trial --set evaluate.calibration_split=held_out \
    --set evaluate.estimator.kind=ipw \
    --set evaluate.bootstrap=0 --set "evaluate.plot=$plot" --json "$d/eval.json.partial" > "$d/eval.log" 2>&1
  mv "$d/eval.json.partial" "$d/eval.json"
}
tune() {  # dir data method [extra dfcl args]: writes dir/best.yaml
  local t=$1 data=$2 method=$3; shift 3
  [ -f "$t/best.yaml" ] && return 0
  "$dfcl" -q tune "${layers[@]}" -c "$cfg/methods/$method.yaml" --set "train.data=$data" --set train.seed=100 \
    --set "tune.output=$t" --set tune.parallel=2 "$@" --json "$t.json" > "$t.log" 2>&1
  mv "$t.json" "$t/tune.json"
}

for noise in $noises; do
  r=$out/noise_$noise
  mkdir -p "$r/tune"
  tdata=$(generate "$noise" 100)
  tune "$r/tune/tsm_sl" "$tdata" tsm_sl
  best=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["best"]["checkpoint"])' "$r/tune/tsm_sl/tune.json")
  tune "$r/tune/dfcl_ifd" "$tdata" dfcl_ifd --set "train.init_from=$best" --set "loss.lambdas=$lambdas"
  say "noise $noise: tuned"
  for seed in $(seq 1 "$seeds"); do
    data=$(generate "$noise" "$seed")
    fit_seed "$r/$seed" "$data" "$seed" "$r/tune/tsm_sl/best.yaml" "$r/tune/dfcl_ifd/best.yaml"
    evaluate "$r/$seed" "$data" "$(budgets_of marketing)"
    say "noise $noise seed $seed: done"
  done
done

if [ "${HILLSTROM:-1}" = 1 ]; then
  h=$out/hillstrom
  mkdir -p "$h/tune"
  data=$h/hillstrom.h5
  [ -f "$data" ] || "$dfcl" -q import -c configs/import_hillstrom.yaml --set import.input=../shared/data/hillstrom.csv \
    --set "import.output=$data" > /dev/null
  # Hillstrom's budgets: 0.03, 0.05 and 0.08 per customer (the e-mails cost 0.1; treating everyone costs 0.1).
  hb="[0.03,0.05,0.08]"
  layers=(-c "$cfg/base.yaml" --set "validation.budgets=$hb" --set train.split_fractions=[0.5,0.2])
  lambdas="[1,3,10]"
  tune "$h/tune/tsm_sl" "$data" tsm_sl
  best=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["best"]["checkpoint"])' "$h/tune/tsm_sl/tune.json")
  tune "$h/tune/dfcl_ifd" "$data" dfcl_ifd --set "train.init_from=$best" --set "loss.lambdas=$lambdas"
  ks="[2,5,10,20,50]"
  for seed in $(seq 1 "$seeds"); do
    fit_seed "$h/$seed" "$data" "$seed" "$h/tune/tsm_sl/best.yaml" "$h/tune/dfcl_ifd/best.yaml"
    evaluate "$h/$seed" "$data" "$hb" "$([ "$seed" = 1 ] && echo docs/img/cluster_hillstrom_cost_curve.svg)"
    say "hillstrom seed $seed: done"
  done
fi
say "done; launch/experiments/summarise_robustness.py $out $seeds writes the section of docs/results.md"
