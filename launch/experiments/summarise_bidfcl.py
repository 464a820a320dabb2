#!/usr/bin/env python3
"""Writes the Bi-DFCL section of docs/results.md from launch/experiments/bidfcl.sh's output.

Usage: summarise_bidfcl.py OUT SEEDS. Standard library only; reuses summarise.py's CI helpers. Reads
OUT/<regime>/eval_<seed>.json (every model of a seed evaluated together on the test rows) and each Bi-DFCL run's
metrics.jsonl (CG statistics, the selected epoch). Replaces the text between the markers <!-- bidfcl:begin --> and
<!-- bidfcl:end --> in docs/results.md (appends them the first time).
"""
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from summarise import ci, fmt, load_regime, splice_section  # noqa: E402

NAMES = {
    "tsm_trial": "TSM-SL, trial", "tsm_log": "TSM-SL, log", "tsm_both": "TSM-SL, trial + log",
    "dfcl_ppl": "DFCL-PPL, trial", "dfcl_pifd": "DFCL-PIFD, trial",
    "bidfcl_ppl": "Bi-DFCL-PPL", "bidfcl_pifd": "Bi-DFCL-PIFD",
    "bidfcl_wo_id": "Bi-DFCL-PPL w/o ID (explicit)", "bidfcl_gn": "Bi-DFCL-PPL, Gauss-Newton HVP",
    "bidfcl_nocf": "Bi-DFCL-PPL, no counterfactual labels",
}
# The same runs with the epoch selected by the DR estimate (validation.keep_best: best_dr_eom.ckpt).
for _m in ("tsm_trial", "tsm_log", "tsm_both", "dfcl_ppl", "dfcl_pifd", "bidfcl_ppl", "bidfcl_pifd"):
    NAMES[_m + "_dr"] = NAMES[_m] + ", DR-selected"
REGIMES = {"bidfcl_m5": "M = 5 arms", "bidfcl_m2": "M = 2 arms",
           "bidfcl_m5_confounded": "M = 5 arms, a hidden confounder in the log (logging_confounding = 2)"}
BASE = "tsm_trial"


def mean_regret(sc):
    return statistics.fmean(o["regret"] for o in sc["oracle"])


def paired(per, a, b):
    """Mean regret of a minus b, paired per seed (negative: a is better)."""
    return ci([mean_regret(per[a][s]) - mean_regret(per[b][s]) for s in per.get(a, {}) if s in per.get(b, {})])


def bilevel_stats(out, regime, method, seeds):
    it, neg, steps, best = [], 0, 0, []
    for s in range(1, seeds + 1):
        p = os.path.join(out, regime, method, str(s), "metrics.jsonl")
        if not os.path.exists(p):
            continue
        last_best = None
        for line in open(p):
            r = json.loads(line)
            b = r.get("bilevel", {})
            if b.get("upper_steps", 0):
                it.append(b["mean_cg_iterations"])
                neg += b["negative_curvature_steps"]
                steps += b["upper_steps"]
            if r.get("best"):
                last_best = r["epoch"]
        best.append(last_best)
    return (statistics.fmean(it) if it else 0.0), neg, steps, best


def section(out, regime, seeds):
    meta, per = load_regime(out, regime, seeds)
    if meta is None:
        return [f"### {REGIMES[regime]}", "", "Not run.", ""]
    budgets = meta["budgets"]
    n = len(per.get(BASE, {}))
    lines = [f"### {REGIMES[regime]}", "",
             f"Test split: {meta['rows_evaluated']:,} trial rows; budgets per user {', '.join(f'{b:g}' for b in budgets)}; "
             f"λ calibrated by the IPW spend on the {meta['budget_calibration']['calibration_rows']:,} held-out trial rows. "
             f"Seeds: {n}. Regret = (oracle revenue − the policy's true revenue) / users, at the true spend.", ""]
    head = ("| method | " + " | ".join(f"regret @ {b:g}" for b in budgets) +
            " | mean regret | paired Δ vs TSM-SL (trial) | seeds better | EOM / TSM-SL (trial) |")
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for m in list(NAMES) + ["random"]:
        if m not in per:
            continue
        runs = per[m]
        cells = [fmt(ci([runs[s]["oracle"][k]["regret"] for s in runs])) for k in range(len(budgets))]
        d = paired(per, m, BASE) if m != BASE else None
        better = sum(1 for s in runs if s in per[BASE] and mean_regret(runs[s]) < mean_regret(per[BASE][s]))
        eom = ci([statistics.fmean(e["revenue"] for e in runs[s]["eom"]) /
                  statistics.fmean(e["revenue"] for e in per[BASE][s]["eom"]) for s in runs if s in per[BASE]])
        lines.append(f"| {NAMES.get(m, m)} | " + " | ".join(cells) + f" | {fmt(ci([mean_regret(runs[s]) for s in runs]))} | "
                     f"{fmt(d, sign=True) if d else '—'} | {better if m != BASE else '—'}/{len(runs)} | {fmt(eom)} |")
    lines.append("")
    # The paper's ordering (Table 2): Bi-DFCL > TSM-SL (both) > DFCL (trial) > TSM-SL (trial), by mean regret here.
    chain = [("bidfcl_ppl", "tsm_both"), ("bidfcl_pifd", "tsm_both"), ("tsm_both", "dfcl_ppl"), ("dfcl_ppl", "tsm_trial")]
    for suffix, label in (("", "every model selected on its own metric (IPW EOM for the decision losses)"),
                          ("_dr", "every model's epoch selected by the DR estimate instead")):
        lines += [f"The paper's ordering, pair by pair, {label} (paired Δ of mean regret, negative = the first is "
                  "better):", ""]
        for a, b in chain:
            a, b = a + suffix, b + suffix
            if a in per and b in per:
                d = paired(per, a, b)
                verdict = "holds" if d[0] + (d[1] if d[1] == d[1] else 0) < 0 else ("fails" if d[0] - (d[1] if d[1] == d[1] else 0) > 0 else "not resolved")
                lines.append(f"- {NAMES[a]} better than {NAMES[b]}: Δ = {fmt(d, sign=True)} → {verdict}")
        lines.append("")
    # What DR selection changed per model: its regret minus the same run selected on its own metric.
    diffs = []
    for m in ("dfcl_ppl", "dfcl_pifd", "bidfcl_ppl", "bidfcl_pifd", "tsm_trial", "tsm_both"):
        if m in per and m + "_dr" in per:
            diffs.append(f"{NAMES[m]} {fmt(paired(per, m + '_dr', m), sign=True)}")
    if diffs:
        lines += ["DR selection against the run's own selection (paired Δ of mean regret, negative = DR chose a better "
                  "epoch): " + "; ".join(diffs) + ".", ""]
    stats = []
    for m in ("bidfcl_ppl", "bidfcl_pifd", "bidfcl_wo_id", "bidfcl_gn", "bidfcl_nocf"):
        it, neg, steps, best = bilevel_stats(out, regime, m, seeds)
        if steps:
            stats.append(f"{NAMES[m]}: {it:.1f} CG products per upper step, {neg} of {steps} upper steps stopped on "
                         f"negative curvature, selected epochs {best}")
    if stats:
        lines += ["Bi-DFCL runs: " + "; ".join(stats) + ".", ""]
    return lines


def main():
    out, seeds = sys.argv[1], int(sys.argv[2])
    body = ["## Bi-DFCL: a trial and a selection-biased log (issue 15)", "",
            "`launch/experiments/bidfcl.sh` (then `launch/experiments/summarise_bidfcl.py`): the marketing family, a "
            "50k-row trial and a 500k-row log from the generator's confounded logging policy, the criteo preset for every "
            "net, split 80/10/10 by row. Per seed (data and training seed together): TSM-SL on the trial (10 epochs), on "
            "the log and on both (4 epochs), selected by validation loss; DFCL-PPL and DFCL-PIFD fine-tuning the seed's "
            "trial TSM-SL on the trial (5 epochs, training budget 0.6, τ = 0.1, lr 1e-3); Bi-DFCL with "
            "configs/bidfcl.yaml (6 epochs, 1 warm-start epoch, teacher = the seed's trial TSM-SL), selected, like the "
            "DFCL losses, by validation EOM. Every run also kept its best epoch by the DR estimate "
            "(`validation.keep_best: [dr_eom]`; the outcome model per-arm ridge cross-fitted on the validation rows), "
            "evaluated as the row \"…, DR-selected\": the same training, another selection. Batch size and epochs of "
            "TSM-SL are `configs/train.yaml`'s (now `auto`). Mean ± 95% CI over seeds (Student's t); Δ paired per seed.", ""]
    for regime in REGIMES:
        body += section(out, regime, seeds)
    splice_section("bidfcl", body, "discussion_bidfcl.md")


if __name__ == "__main__":
    main()
