#!/usr/bin/env bash
# \brief End-to-end checks of budgets in true spend and several files in one run, through the `dfcl` binary:
#  1. a constructed scorer whose predicted costs are the true costs x 0.2 (the true revenue tables otherwise) is flagged
#     as overspending by `dfcl evaluate` when lambda comes from its own costs, and is not ranked; with trial
#     calibration its decisions are the oracle's and meet the budget;
#  2. a trial file and a log file train as one dataset (train.source: all) and the run resumes; a held-out trial file
#     validates whole; evaluate reads a file the model never saw whole (split auto) and its training file's test split;
#  3. allocate with trial calibration reports predicted, trial and true spend, and writes the budget curve.
# Usage: decision_quality.sh DFCL WORKDIR. Needs Debian's python3 with h5py (launch/setup.sh installs it).
set -euo pipefail
dfcl=$1 work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*"; exit 1; }
python3() { /usr/bin/python3 "$@"; }  # Debian's python3, with python3-h5py and python3-numpy
python3 -c 'import h5py, numpy' 2>/dev/null || { echo "skipped: /usr/bin/python3 lacks h5py or numpy"; exit 77; }

small=(--set generate.features=6 --set generate.arms=4 --set generate.seed=3)
"$dfcl" -q generate "${small[@]}" --set generate.rct_rows=20000 --set generate.observational_rows=0 \
  --set generate.output=trial.h5 >/dev/null
"$dfcl" -q generate "${small[@]}" --set generate.rct_rows=0 --set generate.observational_rows=30000 \
  --set generate.output=log.h5 >/dev/null
"$dfcl" -q generate "${small[@]}" --set generate.rct_rows=8000 --set generate.observational_rows=0 \
  --set generate.seed=4 --set generate.output=holdout.h5 >/dev/null

# 1. Predicted costs x 0.2.
python3 - <<'PY'
import h5py, numpy as np
with h5py.File("trial.h5", "r") as f:
    r, c = f["true_revenue"][:], f["true_cost"][:]
with h5py.File("cheap.h5", "w") as g:
    g["r_hat"] = r.astype("float32")
    g["c_hat"] = (0.2 * c).astype("float32")
PY
"$dfcl" evaluate --set evaluate.data=trial.h5 --set evaluate.scores=[cheap.h5] --set evaluate.budgets=[0.3,0.6] \
  --set evaluate.budget_calibration=predicted --set evaluate.bootstrap=0 --set evaluate.plot= \
  --json predicted.json 2> predicted.log
grep -q "cheap.h5 OVERSPENDS at budget 0.3 per user" predicted.log || { cat predicted.log; fail "no overspend warning"; }
python3 - <<'PY' || fail "predicted calibration: ranks"
import json
s = json.load(open("predicted.json"))["scorers"]
cheap, oracle = s["cheap.h5"], s["oracle"]
assert cheap["overspends"] and cheap["rank"] is None, cheap["rank"]
assert oracle["rank"] == 1, oracle["rank"]
for e in cheap["eom"]:
    assert e["verdict"] == "OVERSPENDS" and e["rank"] is None, e
    assert e["ipw_spend"]["lo"] > e["budget"], e
    assert e["predicted_spend"] <= e["budget"] * 1.001, e  # it believes it meets the budget
print("predicted: cheap.h5 spends", [round(e["ipw_spend"]["value"], 3) for e in cheap["eom"]], "not ranked")
PY
"$dfcl" evaluate --set evaluate.data=trial.h5 --set evaluate.scores=[cheap.h5] --set evaluate.budgets=[0.3,0.6] \
  --set evaluate.bootstrap=0 --set evaluate.plot= --json trial.json 2> trial.log
python3 - <<'PY' || fail "trial calibration"
import json
s = json.load(open("trial.json"))["scorers"]
for e in s["cheap.h5"]["eom"]:
    assert e["verdict"] == "meets", e
print("trial: cheap.h5 meets every budget, rank", s["cheap.h5"]["rank"])
PY

# 2. Trial + log in one run, resumed; a held-out validation file read whole.
train=(train --set train.data=[trial.h5,log.h5] --set train.source=all --set train.epochs=2
       --set train.batch_size=1024 --set model.trunk=[16,8] --set validation.budgets=[0.5]
       --set validation.data=holdout.h5 --set train.output=run)
"$dfcl" "${train[@]}" --set train.max_steps=20 > part.json 2> part.log
grep -q '"partial": true' part.json || fail "the interrupted run did not stop at max_steps"
grep -q "validation: [0-9]* trial rows of holdout.h5 (all split)" part.log || { cat part.log; fail "held-out validation"; }
"$dfcl" -q train --resume --from run/last.ckpt --set train.max_steps=0 > resumed.json 2> resumed.log
grep -q '"partial": false' resumed.json || { cat resumed.log; fail "resume"; }
"$dfcl" "${train[@]}" --set train.output=run_full > full.json 2> /dev/null
python3 - <<'PY' || fail "resumed != uninterrupted"
import json
a, b = json.load(open("resumed.json")), json.load(open("full.json"))
assert a["steps"] == b["steps"] and a["steps"] > 40, (a["steps"], b["steps"])
va, vb = a["history"][-1]["validation"], b["history"][-1]["validation"]
assert va["loss"] == vb["loss"], (va["loss"], vb["loss"])
print("trial + log:", a["steps"], "steps; resumed validation loss", va["loss"], "== uninterrupted")
PY
"$dfcl" evaluate --set evaluate.data=holdout.h5 --set evaluate.scores=run/best.ckpt --set evaluate.budgets=[0.5] \
  --set evaluate.bootstrap=0 --set evaluate.plot= 2> held.log > held.json
grep -q "evaluate.split = auto: all rows" held.log || { cat held.log; fail "held-out file not read whole"; }
"$dfcl" evaluate --set evaluate.data=trial.h5 --set evaluate.scores=run/best.ckpt --set evaluate.budgets=[0.5] \
  --set evaluate.bootstrap=0 --set evaluate.plot= 2> own.log > own.json
grep -q "evaluate.split = auto: the test split (10% of the rows), because run/best.ckpt trained on this data" own.log ||
  { cat own.log; fail "training file not read in its test split"; }

# Other split fractions than the checkpoint's would evaluate its training rows: said loudly (issue 14, item 7).
"$dfcl" evaluate --set evaluate.data=trial.h5 --set evaluate.scores=run/best.ckpt --set evaluate.budgets=[0.5] \
  --set evaluate.split_fractions=[0.5,0.2] --set evaluate.bootstrap=0 --set evaluate.plot= 2> leak.log > /dev/null
grep -q "differ from those run/best.ckpt was trained with" leak.log || { cat leak.log; fail "no warning on other split fractions"; }

# 3. allocate: trial calibration, the three spends, the curve.
"$dfcl" allocate --set allocate.scores=run/best.ckpt --set allocate.data=trial.h5 \
  --set allocate.budgets_per_capita=[0.5] --set allocate.curve=curve.csv --set allocate.output=alloc.csv \
  --set allocate.estimator.kind=ipw > alloc.json 2> alloc.log
grep -q "lambda by trial calibration" alloc.log || { cat alloc.log; fail "allocate calibration"; }
# The model trained on trial.h5: lambda is calibrated on its held-out rows only (its validation and test splits).
grep -q "allocate.calibration_split = auto: the [0-9]* held-out trial rows of trial.h5" alloc.log ||
  { cat alloc.log; fail "allocate calibrates on held-out rows"; }
python3 - <<'PY' || fail "allocate spends"
import json
j = json.load(open("alloc.json"))
assert j["trial"]["split"] == "held_out" and 3000 < j["trial"]["rows"] < 5000, j["trial"]
b = j["budgets"][0]
# On 4k trial rows one row's switch moves the IPW spend by up to ~1e-3 per user: reached from below.
assert b["reached"] and 0.49 < b["trial_spend_per_user"]["value"] <= 0.5 + 1e-9, b["trial_spend_per_user"]
assert abs(b["true_spend_per_user"] - 0.5) < 0.05, b["true_spend_per_user"]
print("allocate at 0.5: predicted", round(b["predicted_spend_per_user"], 4), "trial", round(b["trial_spend_per_user"]["value"], 4),
      "true", round(b["true_spend_per_user"], 4))
PY
head -1 curve.csv | grep -q "^lambda,predicted_spend_per_user,predicted_revenue_per_user,trial_spend_per_user,trial_revenue_per_user$" ||
  fail "curve header"
head -1 alloc.csv | grep -q "^user,arm_at_0.5_per_user$" || fail "allocation header"

# 4. The doubly robust estimator: lambda by the DR spend, its precision, and the outcome model's bad input.
"$dfcl" allocate --set allocate.scores=run/best.ckpt --set allocate.data=trial.h5 \
  --set allocate.budgets_per_capita=[0.5] > alloc_dr.json 2> alloc_dr.log  # the default: lambda by the DR spend
grep -q "lambda by trial calibration on the dr spend" alloc_dr.log || { cat alloc_dr.log; fail "allocate by DR"; }
python3 - <<'PY' || fail "allocate by DR: estimate and precision"
import json
b = json.load(open("alloc_dr.json"))["budgets"][0]
e, p = b["estimate"], b["precision"]
assert e["estimator"] == "dr" and abs(e["spend"]["value"] - 0.5) < 0.01, e
assert e["spend"]["se"] < b["trial_spend_per_user"]["se"], (e["spend"], b["trial_spend_per_user"])  # DR is tighter
half = (e["spend"]["hi"] - e["spend"]["lo"]) / 2 / 0.5
assert abs(p["half_width_share"] - half) < 1e-12 and p["rows_for_target"] > p["trial_rows"], p
print("allocate by DR at 0.5: DR spend", round(e["spend"]["value"], 4), "+-", round(100 * half, 1), "%; IPW se",
      round(b["trial_spend_per_user"]["se"], 4), "DR se", round(e["spend"]["se"], 4), "; rows for +-2%:", p["rows_for_target"])
PY
# An outcome model that trained on the judged rows is refused; one from another dataset names both schemas.
"$dfcl" evaluate --set evaluate.data=trial.h5 --set evaluate.scores=[oracle] --set evaluate.split=all \
  --set evaluate.estimator.outcome_model=run/best.ckpt --set evaluate.plot= 2> om_seen.log > /dev/null && fail "accepted"
grep -q "evaluate.estimator.outcome_model run/best.ckpt trained on trial.h5, and the rows judged here (all split of it) include rows it trained on" om_seen.log ||
  { cat om_seen.log; fail "outcome model on its training rows"; }
"$dfcl" -q generate --set generate.features=5 --set generate.rct_rows=2000 --set generate.observational_rows=0 \
  --set generate.output=five.h5 > /dev/null
"$dfcl" evaluate --set evaluate.data=five.h5 --set evaluate.scores=[oracle] \
  --set evaluate.estimator.outcome_model=run/best.ckpt --set evaluate.plot= 2> om_other.log > /dev/null && fail "accepted"
grep -q "evaluate.estimator.outcome_model run/best.ckpt: five.h5: has 5 features and 5 arms, but the model run/best.ckpt was trained on 6 features and 4 arms" om_other.log ||
  { cat om_other.log; fail "outcome model from another dataset"; }
# The test split of its own training file is held out from it: accepted as the outcome model there.
"$dfcl" -q evaluate --set evaluate.data=trial.h5 --set evaluate.scores=[run/best.ckpt] \
  --set evaluate.estimator.outcome_model=run/best.ckpt --set evaluate.bootstrap=0 --set evaluate.plot= > om_ok.json
echo "decision_quality: all checks passed"
